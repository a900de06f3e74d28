"""The state store as an asset: every flow depends on its schema being current."""

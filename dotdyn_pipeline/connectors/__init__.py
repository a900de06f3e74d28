"""Plain Python clients of the external systems. Nothing here imports Dagster or the sandbox."""

"""Email accounts: each active esc_emailaccount row is one Dotdigital account and one partition key."""

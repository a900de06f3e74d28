"""Consent: unsubscribes and suppressions carried both ways between Dotdigital and Dynamics, never a resubscribe."""

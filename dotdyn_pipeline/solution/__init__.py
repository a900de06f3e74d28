"""The Dynamics solution: defined in schema.py, installed by provision.py."""

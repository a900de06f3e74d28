"""Dagster objects, one folder per concern; definitions.py loads them all."""

"""Sends from Dynamics: campaign sends to marketing lists, each executed exactly once."""

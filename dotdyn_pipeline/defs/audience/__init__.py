"""Audience: Dynamics contacts, leads, accounts and marketing lists into Dotdigital address books."""

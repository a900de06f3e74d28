"""Engagement: campaigns, send summaries, clicks, ROI details and suppressions from Dotdigital into Dynamics."""

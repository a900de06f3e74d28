"""Process-level tactics for bulk work, with no Dagster in them: pausing the cycle collector, a forked second
core, reading ahead on a thread."""

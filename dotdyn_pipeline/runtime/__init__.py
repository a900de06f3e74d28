"""Process-level helpers with no Dagster in them: pausing the cycle collector, a forked second core, reading
ahead on a thread, and child process trees that stop as a whole."""

"""Benchmarks run by `dotdyn bench NAME`: each prints one JSON object as its last line."""

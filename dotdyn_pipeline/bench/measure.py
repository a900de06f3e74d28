"""Measuring helpers shared by the benchmarks: wall time and peak memory, of this process or of the processes
it starts."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time the block; read `.seconds` after it."""
    watch, start = Stopwatch(), time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = round(time.perf_counter() - start, 3)


@dataclass
class RunMemory:
    total_mb: float = 0.0  # the most this process and those it started held at once, each page counted once
    rss_sum_mb: float = 0.0  # the most their resident sets added up to (pages they share counted in each)
    largest_mb: float = 0.0  # the most any one of them held (resident set)


def _sizes(process: psutil.Process) -> tuple[int, int]:
    """(proportional set size, resident set size) of `process`: the PSS shares each page among the processes that
    map it, so the sizes of processes forked from one another add up to the memory they hold together."""
    memory = process.memory_full_info()
    return memory.pss, memory.rss


@contextmanager
def run_memory(interval: float = 0.1) -> Iterator[RunMemory]:
    """Sample, until the block ends, the memory of this process and of the processes it starts in the block (a
    run's step processes, forked from a server that has imported the code they share; not a sandbox started
    before)."""
    peak, stop, me = RunMemory(), threading.Event(), psutil.Process()
    before = {process.pid for process in me.children(recursive=True)}

    def sample() -> None:
        while not stop.wait(interval):
            sizes = []
            for process in [me, *me.children(recursive=True)]:
                if process.pid in before:
                    continue
                try:
                    sizes.append(_sizes(process))
                except psutil.Error:  # ended since it was listed
                    pass
            peak.total_mb = max(peak.total_mb, round(sum(pss for pss, _ in sizes) / 2**20, 1))
            peak.rss_sum_mb = max(peak.rss_sum_mb, round(sum(rss for _, rss in sizes) / 2**20, 1))
            peak.largest_mb = max(peak.largest_mb, round(max(rss for _, rss in sizes) / 2**20, 1))

    sampler = threading.Thread(target=sample, name="memory-sampler", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
        peak.largest_mb = max(peak.largest_mb, peak_rss_mb())  # this process's own peak is exact
        peak.rss_sum_mb = max(peak.rss_sum_mb, peak.largest_mb)

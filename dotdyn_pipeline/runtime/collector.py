"""Bulk loops and Python's cycle collector."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """How many pauses are open, and whether the collector ran before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.resume = False


_PAUSES = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk loop that holds pages of rows while it works (parsed JSON,
    database rows). Those survive the collector's young passes, and so many survivors make it walk every object
    of the process again and again (its modules, and the columns being built), though none is garbage, so that
    walking them becomes a large share of the loop's time (docs/performance.md). Such a loop makes no reference
    cycles: reference counting frees what it drops. Pauses nest and may overlap across
    threads; the collector resumes when the last one ends, if it was running before the first began."""
    with _PAUSES.lock:
        if not _PAUSES.open:
            _PAUSES.resume = gc.isenabled()
            gc.disable()
        _PAUSES.open += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.open -= 1
            if not _PAUSES.open and _PAUSES.resume:
                gc.enable()

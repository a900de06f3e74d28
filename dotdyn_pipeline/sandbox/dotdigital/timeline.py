"""Work due at a wall-clock time (a scheduled send going out, a split test choosing its winner), run in order on
one background thread, so a send happens whether or not anyone asks about it."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timeline:
    """Runs each callable at (or soon after) its due time, one at a time, oldest due first."""

    def __init__(self, name: str, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def at(self, when: float, work: Callable[[], None]) -> None:
        """Run `work` once the clock reaches `when` (epoch seconds); at once when that has passed."""
        with self._wake:
            heapq.heappush(self._due, (when, next(self._order), work))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._due.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._due or self._due[0][0] > self._clock()):
                    self._wake.wait(None if not self._due else max(0.0, self._due[0][0] - self._clock()))
                if self._stopped:
                    return
                _, _, work = heapq.heappop(self._due)
            try:
                work()
            except Exception:  # one failed send must not stop the others
                log.exception("scheduled Dotdigital work failed")

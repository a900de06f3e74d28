"""Named leases: exclusive work across processes that share the state store, which end with the work.

A lease names its holder twice: the run it works for, and the process that does the work (its pid and host,
and when it took the lease). While the holder's block runs, a thread renews the lease well inside its time to
live. Another asker takes the lease over as soon as its holder is known dead:
- its process on this host is gone, or its pid now belongs to a process started after the lease was taken;
- the asker's `run_alive` says its run has ended (failed, canceled, or unknown to the instance);
- it is on another host and its heartbeats stopped for longer than the time to live.
A live process on this host keeps its lease even when a renewal is late (an SQLite write transaction of the
holder blocks its own heartbeat), since the process table answers for it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psutil

from dotdyn_pipeline.state.backend import Backend

log = logging.getLogger(__name__)

#: Whether the run that a lease names is still going. The caller answers (from Dagster's instance), so that the
#: state store knows nothing of Dagster.
RunAlive = Callable[[str], bool]

#: Renewals per time to live: a holder misses several before its lease runs out.
HEARTBEATS_PER_TTL = 5

#: How much earlier than its true start the system may report a process's start time: Linux counts it from a
#: boot time rounded to the second, so a holder can seem to have started just after it took its lease.
_START_TIME_SLACK = timedelta(seconds=1)

_COLUMNS = "holder, pid, host, acquired_at, expires_at"


class LeaseBusy(TimeoutError):
    """Another holder kept the lease for longer than the caller was willing to wait."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: the run it works for, and the process doing that work (this one, unless told)."""

    run_id: str
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)


@dataclass(frozen=True)
class _Taken:
    """A lease as its row holds it; `pid`, `host` and `acquired_at` are empty on a lease from an older version."""

    run_id: str
    pid: int | None
    host: str | None
    acquired_at: str | None
    expires_at: str


def process_alive(pid: int, taken_at: datetime | None) -> bool:
    """Whether process `pid` of this host runs, and is not a newer process given the pid of one that held a lease
    taken at `taken_at`."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped by its parent
            return False
        started = datetime.fromtimestamp(process.create_time(), UTC)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; who started it, this host does not tell
    return taken_at is None or started <= taken_at + _START_TIME_SLACK


def _holder_ended(taken: _Taken, now: datetime, run_alive: RunAlive | None) -> bool:
    here = taken.pid is not None and taken.host == socket.gethostname()
    taken_at = datetime.fromisoformat(taken.acquired_at) if taken.acquired_at else None
    if here and not process_alive(taken.pid, taken_at):
        return True
    if run_alive is not None and not run_alive(taken.run_id):
        return True
    return not here and datetime.fromisoformat(taken.expires_at) <= now


class Leases:
    """Named leases over one connection to the state store."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _taken(self, name: str) -> _Taken | None:
        rows = self.backend.query(f"SELECT {_COLUMNS} FROM lease WHERE name = ?", (name,))
        return _Taken(*rows[0]) if rows else None

    def acquire(self, name: str, holder: Holder, ttl: timedelta, run_alive: RunAlive | None = None) -> bool:
        """Take the lease if it is free, already `holder`'s run's, or its holder has ended; say whether it was."""
        now = datetime.now(UTC)
        row = (holder.run_id, holder.pid, holder.host, now.isoformat(), now.isoformat(), (now + ttl).isoformat())
        taken = self._taken(name)
        if taken is None:
            return self.backend.execute(
                "INSERT INTO lease (name, holder, pid, host, acquired_at, renewed_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING", (name, *row)) == 1
        if taken.run_id != holder.run_id and not _holder_ended(taken, now, run_alive):
            return False
        # only the lease as read is taken over: an asker that came first, or a renewal meanwhile, wins
        return self.backend.execute(
            "UPDATE lease SET holder = ?, pid = ?, host = ?, acquired_at = ?, renewed_at = ?, expires_at = ? "
            "WHERE name = ? AND holder = ? AND expires_at = ?", (*row, name, taken.run_id, taken.expires_at)) == 1

    def renew(self, name: str, holder: Holder, ttl: timedelta) -> bool:
        """Extend `holder`'s lease by `ttl` from now; False when it no longer holds it."""
        now = datetime.now(UTC)
        return self.backend.execute(
            "UPDATE lease SET renewed_at = ?, expires_at = ? WHERE name = ? AND holder = ? AND pid = ? AND host = ?",
            (now.isoformat(), (now + ttl).isoformat(), name, holder.run_id, holder.pid, holder.host)) == 1

    def release(self, name: str, holder: Holder) -> None:
        self.backend.execute("DELETE FROM lease WHERE name = ? AND holder = ? AND pid = ? AND host = ?",
                             (name, holder.run_id, holder.pid, holder.host))

    @contextmanager
    def hold(self, name: str, holder: Holder, ttl: timedelta, wait: float, *, run_alive: RunAlive | None = None,
             poll: float = 0.2) -> Iterator[None]:
        """Hold the lease for the block, renewed while it runs, waiting up to `wait` seconds for another holder to
        finish or be found dead."""
        deadline = time.monotonic() + wait
        while not self.acquire(name, holder, ttl, run_alive):
            if time.monotonic() > deadline:
                raise LeaseBusy(f"lease {name!r} is still held by another run after {wait:.0f} s")
            time.sleep(poll)
        try:
            with self._heartbeat(name, holder, ttl):
                yield
        finally:
            self.release(name, holder)

    @contextmanager
    def _heartbeat(self, name: str, holder: Holder, ttl: timedelta) -> Iterator[None]:
        """Renew the lease from a thread until the block ends. The thread has a connection of its own: the
        holder's may be in a long transaction, which would hold a renewal back or take it down with a rollback."""
        stop = threading.Event()

        def beat() -> None:
            own: Backend | None = None
            while not stop.wait(ttl.total_seconds() / HEARTBEATS_PER_TTL):
                try:
                    own = own or self.backend.connect_again()
                    if not Leases(own).renew(name, holder, ttl):
                        log.warning("lease %r: taken over from run %s, which was found dead", name, holder.run_id)
                        break
                except Exception as exc:  # a busy database or a lost connection: the next beat tries again
                    log.warning("lease %r: not renewed, trying again: %s", name, exc)
                    _close_quietly(own)
                    own = None
            _close_quietly(own)

        thread = threading.Thread(target=beat, name=f"heartbeat of lease {name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _close_quietly(backend: Backend | None) -> None:
    """Close a connection the heartbeat is done with (one that failed is replaced by a new one)."""
    if backend is not None:
        with suppress(Exception):  # a connection that broke may fail to close as well
            backend.close()

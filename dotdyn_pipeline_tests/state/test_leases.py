"""Leases are exclusive while their holder lives and end with it, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from dotdyn_pipeline.state import Holder, LeaseBusy, StateStore

LONG = timedelta(minutes=5)
ELSEWHERE = "another-host.example"


def _expires_at(store: StateStore, name: str) -> datetime:
    return datetime.fromisoformat(store.backend.query("SELECT expires_at FROM lease WHERE name = ?", (name,))[0][0])


def _holder(store: StateStore, name: str) -> str | None:
    rows = store.backend.query("SELECT holder FROM lease WHERE name = ?", (name,))
    return rows[0][0] if rows else None


def _ended_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_lease_is_exclusive_until_released(store):
    leases = store.leases
    assert leases.acquire("extract", Holder("run-1"), LONG)
    assert not leases.acquire("extract", Holder("run-2"), LONG)
    assert leases.acquire("extract", Holder("run-1"), LONG), "its holder may take it again"
    leases.release("extract", Holder("run-1"))
    assert leases.acquire("extract", Holder("run-2"), LONG)
    with pytest.raises(LeaseBusy):
        with leases.hold("extract", Holder("run-3"), LONG, wait=0.3, poll=0.05):
            pass


def test_hold_waits_for_the_other_holder(store, state_url):
    order: list[str] = []
    other = StateStore.open(*state_url)
    started = threading.Event()

    def first():
        with other.leases.hold("extract", Holder("run-1"), timedelta(minutes=1), wait=5, poll=0.01):
            started.set()
            order.append("first in")
            threading.Event().wait(0.3)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    with store.leases.hold("extract", Holder("run-2"), timedelta(minutes=1), wait=10, poll=0.01):
        order.append("second in")
    thread.join()
    other.close()
    assert order == ["first in", "first out", "second in"]


def test_the_heartbeat_keeps_a_lease_held_past_its_time_to_live(store):
    """A holder on another host is known alive by its renewals only: while its block runs, the lease outlives
    the time to live it was taken with, and once the renewals stop it runs out."""
    ttl = timedelta(seconds=1)
    remote = Holder("run-1", host=ELSEWHERE)
    with store.leases.hold("extract", remote, ttl, wait=1):
        first_expiry = _expires_at(store, "extract")
        deadline = time.monotonic() + 10
        while datetime.now(UTC) <= first_expiry + ttl:
            assert time.monotonic() < deadline, "the held lease was not renewed"
            time.sleep(0.05)
        assert _expires_at(store, "extract") > datetime.now(UTC), "renewed while held"
        assert not store.leases.acquire("extract", Holder("run-2"), ttl), "a renewed lease is not taken over"
    assert store.leases.acquire("extract", Holder("run-2"), ttl), "released at the end of the block"


def test_a_holder_on_another_host_is_taken_over_when_its_time_runs_out(store):
    assert store.leases.acquire("extract", Holder("run-1", host=ELSEWHERE), LONG)
    assert not store.leases.acquire("extract", Holder("run-2"), LONG), "still within its time to live"
    assert store.leases.acquire("cleanup", Holder("run-1", host=ELSEWHERE), timedelta(seconds=-1))
    assert store.leases.acquire("cleanup", Holder("run-2"), LONG), "silent for longer than its time to live"
    assert _holder(store, "cleanup") == "run-2"


def test_a_holder_whose_process_on_this_host_is_gone_is_taken_over_at_once(store):
    assert store.leases.acquire("extract", Holder("run-1", pid=_ended_pid()), LONG)
    assert store.leases.acquire("extract", Holder("run-2"), LONG)
    assert _holder(store, "extract") == "run-2"


def test_a_pid_now_used_by_a_process_started_after_the_lease_is_not_its_holder(store):
    """The lease names this process's pid but was taken before this process started: the pid was reused."""
    assert store.leases.acquire("extract", Holder("run-1"), LONG)
    started = datetime.fromtimestamp(psutil.Process(os.getpid()).create_time(), UTC)
    store.backend.execute("UPDATE lease SET acquired_at = ? WHERE name = ?",
                          ((started - timedelta(minutes=1)).isoformat(), "extract"))
    assert store.leases.acquire("extract", Holder("run-2"), LONG)


def test_a_live_process_on_this_host_keeps_its_lease_when_a_renewal_is_late(store):
    assert store.leases.acquire("extract", Holder("run-1"), timedelta(seconds=-1))
    assert not store.leases.acquire("extract", Holder("run-2"), LONG)
    assert _holder(store, "extract") == "run-1"


@pytest.mark.parametrize("host", [None, ELSEWHERE], ids=["this host", "another host"])
def test_a_holder_whose_run_ended_is_taken_over_at_once(store, host):
    holder = Holder("run-1", host=host) if host else Holder("run-1")
    assert store.leases.acquire("extract", holder, LONG)
    assert not store.leases.acquire("extract", Holder("run-2"), LONG, run_alive=lambda run_id: True), \
        "a live holder whose run goes on keeps its lease"
    assert store.leases.acquire("extract", Holder("run-2"), LONG, run_alive=lambda run_id: run_id != "run-1")
    assert _holder(store, "extract") == "run-2"


def test_a_lease_from_before_holders_were_recorded_runs_out_as_before(store):
    now = datetime.now(UTC)
    store.backend.execute("INSERT INTO lease (name, holder, expires_at) VALUES (?, ?, ?)",
                          ("extract", "run-1", (now + LONG).isoformat()))
    assert not store.leases.acquire("extract", Holder("run-2"), LONG)
    store.backend.execute("UPDATE lease SET expires_at = ? WHERE name = ?",
                          ((now - timedelta(seconds=1)).isoformat(), "extract"))
    assert store.leases.acquire("extract", Holder("run-2"), LONG)

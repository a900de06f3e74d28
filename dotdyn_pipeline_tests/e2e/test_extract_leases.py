"""A run killed (kill -9) while it extracts a table holds back no later sync: the next one takes the table's lease
over at once, though the killed run is still STARTED in the instance, as nothing outlived it to say otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest

from dotdyn_pipeline.defs.audience.extract import DATA_MAPPINGS, PEOPLE, CrmTable
from dotdyn_pipeline.resources import state_store_resource
from dotdyn_pipeline.state import StateStore

T = TypeVar("T")

#: The steps killed, with the Dataverse entity set each reads. Every extract step takes its lease in the same
#: extract(), and each case costs two launched runs, so two stand for all: the first step of a run, and a people
#: table's, which waits on another step and reads the attributes that data mappings name.
KILLED_STEPS = [(DATA_MAPPINGS, "esc_emaildatamappings"),
                (next(table for table in PEOPLE if table.logical_name == "contact"), "contacts")]

#: An audience run of one partition in the pipeline's instance, as the schedule asks for it: in one process.
LAUNCHED_SYNC = """
import sys
import dagster as dg
from dotdyn_pipeline.definitions import audience_sync_job
from dotdyn_pipeline.defs.audience.jobs import IN_PROCESS
with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(dg.reconstructable(audience_sync_job), instance, run_config=IN_PROCESS,
                            tags={"dagster/partition": sys.argv[1]})
sys.exit(0 if result.success else 1)
"""


def _launch_sync(partition_key: str, log: Path) -> subprocess.Popen:
    """Start the sync; what it prints goes to `log` (a pipe nobody read would stall it)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-c", LAUNCHED_SYNC, partition_key], env=os.environ.copy(),
                                stdout=out, stderr=subprocess.STDOUT)


def _holder(store: StateStore, lease: str) -> tuple[str, int] | None:
    """(run id, pid) of the lease's holder, None when no one holds it."""
    rows = store.backend.query("SELECT holder, pid FROM lease WHERE name = ?", (lease,))
    return rows[0] if rows else None


def _within(seconds: float, what: str, found: Callable[[], T]) -> T:
    deadline = time.monotonic() + seconds
    while not (value := found()):
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.05)
    return value


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.parametrize(("table", "entity_set"), KILLED_STEPS, ids=[table.asset_name for table, _ in KILLED_STEPS])
def test_the_next_sync_takes_over_the_lease_of_a_run_killed_while_extracting(world, pipeline, table: CrmTable,
                                                                             entity_set: str, tmp_path):
    key = pipeline.key(pipeline.accounts[0])
    lease = f"extract:{table.logical_name}"
    with state_store_resource().open() as store:
        # the table's read stalls, so that the kill lands while the run holds the table's lease
        world.http.post("/faults/dataverse", json={"kind": "latency", "latency_ms": 60_000,
                                                   "path": f"/{entity_set}$"}).raise_for_status()
        killed = _launch_sync(key, tmp_path / "killed.log")
        try:
            run_id, pid = _within(120, "the run took the table's lease", lambda: _holder(store, lease))
            assert pid == killed.pid, "the lease names the process that holds it"
            killed.send_signal(signal.SIGKILL)
            killed.wait()
        finally:
            world.http.delete("/faults").raise_for_status()
            _stop(killed)
        assert _holder(store, lease) == (run_id, pid), "the killed run left its lease behind"
        assert pipeline.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED, \
            "no one marked the killed run failed: only its process is known dead"

        log = tmp_path / "following.log"
        following = _launch_sync(key, log)
        try:
            _within(60, "the next sync took the lease over", lambda: (_holder(store, lease) or ("",))[0] != run_id)
            assert following.wait(timeout=600) == 0, f"the next sync failed: {log.read_text()[-3000:]}"
        finally:
            _stop(following)

"""What the Dagster instance says of a run, for the state store's leases (which know nothing of Dagster)."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg


def run_in_progress(instance: dg.DagsterInstance) -> Callable[[str], bool]:
    """Whether a run id names a run of `instance` that has not ended: a failed, canceled or finished run, or one
    the instance does not know, holds no work any more."""
    def alive(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and not run.is_finished

    return alive

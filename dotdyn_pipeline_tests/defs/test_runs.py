"""A lease's run is alive while the Dagster instance has it going; failed, canceled, finished or unknown, not."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test, instance_for_test

from dotdyn_pipeline.defs.runs import run_in_progress
from dotdyn_pipeline.state import Holder

ALIVE = (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
         dg.DagsterRunStatus.CANCELING)
ENDED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.SUCCESS)


@pytest.mark.parametrize("status", ALIVE + ENDED, ids=lambda status: status.value)
def test_a_lease_of_a_run_is_taken_over_once_the_instance_says_the_run_ended(store, status):
    with instance_for_test() as instance:
        run = create_run_for_test(instance, status=status)
        alive = run_in_progress(instance)
        assert store.leases.acquire("extract", Holder(run.run_id), timedelta(minutes=5))
        taken_over = store.leases.acquire("extract", Holder("next-run"), timedelta(minutes=5), run_alive=alive)
        assert taken_over is (status in ENDED)


def test_a_run_the_instance_does_not_know_holds_nothing():
    with instance_for_test() as instance:
        assert not run_in_progress(instance)("a-run-of-no-instance")

"""Pausing the cycle collector for bulk loops: paused inside, restored after, nested and overlapping pauses."""

import gc
import threading

import pytest

from dotdyn_pipeline.runtime.collector import collector_paused


@pytest.fixture(autouse=True)
def collector_running():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_paused_in_the_block_and_runs_again_after_it():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_runs_again_after_a_block_that_raised():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the read failed")
    assert gc.isenabled()


def test_an_inner_pause_ending_leaves_the_outer_one_paused():
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_pauses_overlapping_across_threads_resume_when_the_last_one_ends():
    first_in, second_done = threading.Event(), threading.Event()
    seen_by_first_after_second: list[bool] = []

    def first():
        with collector_paused():
            first_in.set()
            second_done.wait(5)
            seen_by_first_after_second.append(gc.isenabled())

    worker = threading.Thread(target=first)
    worker.start()
    assert first_in.wait(5)
    with collector_paused():
        pass
    second_done.set()
    worker.join(5)
    assert seen_by_first_after_second == [False], "the second pause ending did not end the first"
    assert gc.isenabled()

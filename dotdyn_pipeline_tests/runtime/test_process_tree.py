"""Stop signals within `stop_signals_interrupt`: a stop is never lost, wherever it lands."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest

from dotdyn_pipeline.runtime.process_tree import stop_signals_interrupt


class _StoppedInItsFinalizer:
    """An object whose finalizer is where a SIGTERM's handler happens to run: what it raises, Python ignores."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs here, inside the finalizer


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_block() -> None:
    stopped_at = None
    with pytest.raises(KeyboardInterrupt):
        with stop_signals_interrupt():
            _StoppedInItsFinalizer()  # dropped at once: its finalizer runs and the interrupt raised there is ignored
            gc.collect()
            for step in range(200):
                stopped_at = step
                time.sleep(0.01)
    assert stopped_at is not None and stopped_at < 199, "the block ran to its end: the stop was lost"


def test_the_previous_hook_is_back_after_the_block() -> None:
    import sys

    before = sys.unraisablehook
    with stop_signals_interrupt():
        assert sys.unraisablehook is not before
    assert sys.unraisablehook is before

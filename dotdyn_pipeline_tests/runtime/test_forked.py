"""Work in a forked copy of the process: its result, its error, or its death reaches the parent."""

import os

import pytest

from dotdyn_pipeline.runtime.forked import ForkedWorkFailed, forked


def test_work_in_a_forked_process_returns_its_result_or_its_error():
    with forked(os.getpid) as result:
        assert result() != os.getpid()
    with forked(lambda: 1 / 0) as result, pytest.raises(ForkedWorkFailed, match="ZeroDivisionError"):
        result()
    with forked(lambda: os._exit(3)) as result, pytest.raises(ForkedWorkFailed, match="exit code 3"):
        result()

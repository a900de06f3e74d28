"""The consent tests change data: each module gets its own sandbox and pipeline (the e2e fixtures)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline_tests.e2e.conftest import pipeline, world  # noqa: F401 (fixtures: one sandbox per module)


@pytest.fixture
def pipeline_store(pipeline) -> Iterator[StateStore]:  # noqa: F811
    """The pipeline's own state store."""
    from dotdyn_pipeline.resources import state_store_resource

    opened = state_store_resource().open()
    yield opened
    opened.close()

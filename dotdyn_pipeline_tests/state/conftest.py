"""An open, migrated state store on each backend."""

import pytest

from dotdyn_pipeline.state import StateStore


@pytest.fixture
def store(state_url):
    store = StateStore.open(*state_url)
    yield store
    store.close()

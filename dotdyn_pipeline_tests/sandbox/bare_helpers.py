"""Bare organisations for the metadata tests: one that stays as started (reads) and one the tests customise
(writes), each a sandbox of its own started `--bare`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import web_api

BARE = SandboxSettings(bare=True, contacts=200, leads=50, accounts=30, email_accounts=2)
#: Seconds an alternate key's index stays Pending in the organisation the tests customise.
KEY_INDEX_SECONDS = 1.5


@pytest.fixture(scope="session")
def bare_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A bare organisation nothing changes."""
    with running_sandbox(tmp_path_factory.mktemp("bare"), BARE) as contract:
        yield contract


@pytest.fixture
def bare_dv(bare_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with web_api(bare_sandbox) as client:
        yield client


@pytest.fixture
def bare_control(bare_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bare_sandbox["control_url"], verify=trust(bare_sandbox), timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def custom_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A bare organisation the metadata write tests customise."""
    settings = SandboxSettings(bare=True, contacts=200, leads=50, accounts=30, email_accounts=2,
                               options={"dataverse.key_index_seconds": str(KEY_INDEX_SECONDS)})
    with running_sandbox(tmp_path_factory.mktemp("custom"), settings) as contract:
        yield contract


@pytest.fixture
def cdv(custom_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with web_api(custom_sandbox) as client:
        yield client


@pytest.fixture
def custom_control(custom_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=custom_sandbox["control_url"], verify=trust(custom_sandbox), timeout=30) as client:
        yield client

"""Fixtures shared by the whole suite: one sandbox served over real HTTPS for the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox

#: The suite's sandbox: small, so that it starts in seconds, but with every kind of mess in it.
SUITE_SANDBOX = SandboxSettings(seed=11, contacts=1_500, leads=400, accounts=150, email_accounts=2, days=10)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The contract (sandbox.json) of a sandbox serving for the whole test session."""
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), SUITE_SANDBOX) as contract:
        yield contract


@pytest.fixture
def control(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client of the sandbox's control endpoint; every fault switched on in a test is cleared after it."""
    with httpx.Client(base_url=sandbox["control_url"], verify=sandbox["ca_cert"], timeout=30) as client:
        yield client
        client.delete("/faults").raise_for_status()

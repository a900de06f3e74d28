"""Fixtures of the Dotdigital client's contract suite: one client per transport against the sandbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalConfig, connect
from dotdyn_pipeline.connectors.http import RetryPolicy

#: Short waits so faults are waited out in milliseconds; the waits asked for are recorded, not slept.
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, max_total_wait=30.0)


class Sleeps:
    """An injected sleep that records what was asked and sleeps at most a few milliseconds."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(min(seconds, 0.02))


def client_config(sandbox: dict[str, Any], transport: str, account: int = 0, **overrides: Any) -> DotdigitalConfig:
    """A config of sandbox account `account` on `transport`, with test-sized waits."""
    user = sandbox["accounts"][account]
    config = DotdigitalConfig(
        api_user=user["api_user"], api_password=user["api_password"], base_url=sandbox["dotdigital_url"],
        ca_bundle=sandbox["ca_cert"], transport=transport, soap_address=sandbox["dotdigital_wsdl"].split("?")[0],
        retry=FAST_RETRY, poll_initial=0.05, poll_factor=1.5, poll_max=0.3, quota_wait=0.5, import_timeout=60)
    return replace(config, **overrides)


@pytest.fixture(params=["rest", "soap"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sandbox: dict[str, Any], transport: str, sleeps: Sleeps) -> Iterator[DotdigitalClient]:
    with connect(client_config(sandbox, transport), sleep=sleeps) as connected:
        yield connected


def unique(prefix: str) -> str:
    """A name no other test uses (tests share the session's sandbox)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"

"""Clients of the session sandbox's Dataverse over HTTPS, with fast retries and recorded (not slept) waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseConfig
from dotdyn_pipeline.connectors.http import RetryPolicy

#: Small pages so the suite's 1,500 contacts span several, and retries that do not slow the suite.
PAGE_SIZE = 500
FAST_RETRIES = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, max_total_wait=60)


def sandbox_config(sandbox: dict[str, Any], **overrides: Any) -> DataverseConfig:
    settings: dict[str, Any] = {
        "org_url": sandbox["dataverse_url"], "authority": sandbox["authority"], "client_id": sandbox["client_id"],
        "client_secret": sandbox["client_secret"], "ca_bundle": sandbox["ca_cert"], "max_page_size": PAGE_SIZE,
        "retry": FAST_RETRIES, "timeout": 30.0}
    return DataverseConfig(**{**settings, **overrides})


@pytest.fixture
def waits() -> list[float]:
    """Every wait the client asked for, in order (the client's sleep is replaced by this recorder)."""
    return []


@pytest.fixture
def dataverse(sandbox: dict[str, Any], waits: list[float]) -> Iterator[DataverseClient]:
    with DataverseClient(sandbox_config(sandbox), sleep=waits.append) as client:
        yield client

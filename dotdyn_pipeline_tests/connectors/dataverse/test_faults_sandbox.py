"""A full read survives every fault the sandbox injects, with every row exactly once, over real HTTPS."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseThrottled
from dotdyn_pipeline_tests.connectors.dataverse.conftest import PAGE_SIZE

SELECT = ("contactid", "emailaddress1", "modifiedon")
PAGES_PATH = r"/api/data/v9\.2/contacts"


def retries(client: DataverseClient) -> dict[str, int]:
    return {kind: n for kind, n in client.counter.snapshot().items() if kind.startswith("retry:")}


@pytest.fixture(scope="module")
def baseline_ids(sandbox: dict[str, Any]) -> list[str]:
    """The contact ids of a fault-free read."""
    from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config

    with DataverseClient(sandbox_config(sandbox)) as client:
        ids = [row["contactid"] for page in client.read("contact", ["contactid"]) for row in page]
    assert len(ids) > 2 * PAGE_SIZE  # several pages, so faults land between pages
    return ids


def read_ids_with_fault(client: DataverseClient, control: httpx.Client, fault: dict[str, Any]) -> list[str]:
    """Read every contact, switching `fault` on after the first page so it hits a nextLink mid-read."""
    ids: list[str] = []
    for number, page in enumerate(client.read("contact", SELECT)):
        assert len(page) <= PAGE_SIZE
        ids += [row["contactid"] for row in page]
        if number == 0:
            control.post("/faults/dataverse", json={**fault, "path": PAGES_PATH}).raise_for_status()
    return ids


def test_fault_free_read_uses_one_request_per_page(dataverse: DataverseClient, baseline_ids: list[str]) -> None:
    ids = [row["contactid"] for page in dataverse.read("contact", SELECT) for row in page]
    assert ids == baseline_ids
    assert dataverse.counter.snapshot()["read"] == math.ceil(len(ids) / PAGE_SIZE)
    assert retries(dataverse) == {}


def test_throttling_waits_exactly_retry_after(dataverse: DataverseClient, control: httpx.Client,
                                              baseline_ids: list[str], waits: list[float]) -> None:
    ids = read_ids_with_fault(dataverse, control, {"kind": "throttle", "count": 3, "retry_after": 1})
    assert sorted(ids) == sorted(baseline_ids) and len(set(ids)) == len(ids)
    assert waits == [1.0, 1.0, 1.0]
    assert sum(n for kind, n in retries(dataverse).items() if kind.startswith("retry:throttled")) == 3
    assert dataverse.counter.snapshot()["read"] == math.ceil(len(ids) / PAGE_SIZE) + 3


@pytest.mark.parametrize("fault", [
    {"kind": "server_error", "count": 2},
    {"kind": "status", "status": 502, "count": 2},
    {"kind": "drop", "count": 2},
], ids=["server_error", "bare_502", "drop"])
def test_server_errors_and_dropped_connections_back_off(dataverse: DataverseClient, control: httpx.Client,
                                                        baseline_ids: list[str], waits: list[float],
                                                        fault: dict[str, Any]) -> None:
    ids = read_ids_with_fault(dataverse, control, fault)
    assert sorted(ids) == sorted(baseline_ids) and len(set(ids)) == len(ids)
    assert sum(retries(dataverse).values()) == 2
    assert len(waits) == 2 and all(0 < wait <= 0.05 for wait in waits)  # the test policy's backoff bounds


def test_latency_is_waited_out_without_retrying(dataverse: DataverseClient, control: httpx.Client,
                                               baseline_ids: list[str]) -> None:
    ids = read_ids_with_fault(dataverse, control, {"kind": "latency", "latency_ms": 300, "count": 2})
    assert ids == baseline_ids
    assert retries(dataverse) == {}


def test_persistent_throttling_raises_a_typed_error_without_the_token(
        dataverse: DataverseClient, control: httpx.Client, waits: list[float], sandbox: dict[str, Any]) -> None:
    control.post("/faults/dataverse", json={"kind": "throttle", "count": 50, "retry_after": 2,
                                            "path": PAGES_PATH}).raise_for_status()
    with pytest.raises(DataverseThrottled) as caught:
        next(dataverse.read("contact", SELECT))
    assert caught.value.code == "RetriesExhausted"
    assert waits == [2.0] * (dataverse.config.retry.max_attempts - 1)
    message = str(caught.value)
    assert sandbox["client_secret"] not in message and "Bearer" not in message

"""UpsertStream against the Dataverse sandbox: bulk requests leave as they fill, tags finish once accepted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.connectors.dataverse.stream import UpsertStream
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config

KEY = ("_esc_emailaccountid_value", "esc_email")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = SandboxSettings(seed=37, contacts=50, leads=10, accounts=5, email_accounts=1, days=1)
    with running_sandbox(tmp_path_factory.mktemp("dataverse-stream"), settings) as contract:
        yield contract


@pytest.fixture
def small_batches(sandbox: dict[str, Any]) -> Iterator[DataverseClient]:
    with DataverseClient(sandbox_config(sandbox, batch_size=3, max_concurrency=2)) as client:
        yield client


def _rows(account: str, tag: str, count: int, reason: str = "HardBounced") -> list[dict[str, Any]]:
    return [{"_esc_emailaccountid_value": account, "esc_email": f"{tag}-{i}@example.com", "esc_reason": reason}
            for i in range(count)]


def _stored(client: DataverseClient, prefix: str) -> dict[str, str]:
    return {row["esc_email"]: row["esc_reason"] for page in client.read(
        "esc_emailsupression", ["esc_email", "esc_reason"], filter=f"startswith(esc_email, {literal(prefix)})")
        for row in page}


def test_rows_are_written_in_full_requests_and_tags_finish_after_their_last_row(small_batches):
    account = next(small_batches.read("esc_emailaccount", ["esc_emailaccountid"]))[0]["esc_emailaccountid"]
    run = uuid.uuid4().hex[:8]
    finished: list[str] = []
    with UpsertStream(small_batches, "esc_emailsupression", KEY, on_finished=finished.extend) as stream:
        stream.add(_rows(account, f"{run}a", 4), "a")
        stream.close_tag("a")
        stream.add(_rows(account, f"{run}b", 4), "b")
        assert stream.totals.chunks == 2, "two full requests left as soon as they filled"
        stream.close_tag("b")
        totals = stream.flush()
    assert finished == ["a", "b"]
    assert (totals.upserted, totals.rejected, totals.chunks) == (8, [], 3)
    assert len(_stored(small_batches, run)) == 8
    assert small_batches.counter.snapshot()["upsert_multiple"] == 3


def test_a_rejected_row_is_reported_with_the_service_reason_and_its_tag_still_finishes(small_batches):
    account = next(small_batches.read("esc_emailaccount", ["esc_emailaccountid"]))[0]["esc_emailaccountid"]
    run = uuid.uuid4().hex[:8]
    rows = _rows(account, run, 3)
    rows[1]["esc_reason"] = "x" * 500  # longer than the column allows
    finished: list[str] = []
    with UpsertStream(small_batches, "esc_emailsupression", KEY, on_finished=finished.extend) as stream:
        stream.add(rows, "only")
        stream.close_tag("only")
        totals = stream.flush()
    assert finished == ["only"]
    assert totals.upserted == 2
    [(row, outcome)] = totals.rejected
    assert row is rows[1] and not outcome.ok and outcome.status == 400 and outcome.message
    assert sorted(_stored(small_batches, run)) == [f"{run}-0@example.com", f"{run}-2@example.com"]

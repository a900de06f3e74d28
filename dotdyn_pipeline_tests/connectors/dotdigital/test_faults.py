"""Faults switched on in the sandbox: each ends with every record imported exactly once, or a typed error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.connectors.dotdigital import (
    DotdigitalClient,
    ImportFailed,
    NotFound,
    QuotaExceeded,
    ServiceUnavailable,
    connect,
)
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import Sleeps, client_config, unique


def _fault(control: httpx.Client, **rule: Any) -> None:
    control.post("/faults/dotdigital", json=rule).raise_for_status()


def _import_once(client: DotdigitalClient, n: int = 12) -> tuple[int, list[str]]:
    emails = [f"{unique('f')}@example.com" for _ in range(n)]
    book = client.create_address_book(unique("faults"))
    result = client.import_contacts(book.id, ({"Email": e} for e in emails), ["Email"])
    assert result.rows == n
    return book.id, emails


def _assert_imported_once(client: DotdigitalClient, book_id: int, emails: list[str]) -> None:
    assert sorted(c.email for c in client.address_book_contacts(book_id)) == sorted(emails)


@pytest.fixture
def small_chunks(sandbox, transport, sleeps) -> Iterator[DotdigitalClient]:
    with connect(client_config(sandbox, transport, import_chunk_bytes=200), sleep=sleeps) as client:
        yield client


def test_throttling_is_waited_out_as_the_server_asks(client, control, sleeps: Sleeps) -> None:
    _fault(control, kind="throttle", count=2, retry_after=2, path="address-books|Api.svc")
    books = list(client.address_books())
    assert isinstance(books, list)
    assert client.counter.snapshot().get("retry:throttle") == 2
    assert sleeps.asked.count(2) == 2  # honoured the announced reset, not a backoff guess


@pytest.mark.parametrize("kind", ["server_error", "drop"])
def test_server_errors_and_dropped_connections_are_retried(client, control, sleeps: Sleeps, kind: str) -> None:
    _fault(control, kind=kind, count=2, path="address-books|Api.svc")
    list(client.address_books())
    retries = {k: v for k, v in client.counter.snapshot().items() if k.startswith("retry:")}
    assert sum(retries.values()) == 2
    assert len(sleeps.asked) == 2


def test_persistent_server_errors_end_in_a_typed_error(client, control) -> None:
    _fault(control, kind="server_error", path="address-books|Api.svc")
    with pytest.raises(ServiceUnavailable) as caught:
        list(client.address_books())
    assert "5 attempts" in str(caught.value)


def test_latency_only_slows_calls_down(client, control) -> None:
    _fault(control, kind="latency", latency_ms=150, count=3)
    assert client.account_info().id == client.account.id


@pytest.mark.parametrize("kind", ["throttle", "server_error", "drop"])
def test_an_import_under_faults_imports_every_record_once(small_chunks, control, kind: str) -> None:
    _fault(control, kind=kind, probability=0.3, retry_after=0.1, path="import|Api.svc")
    book_id, emails = _import_once(small_chunks)
    control.delete("/faults/dotdigital").raise_for_status()
    _assert_imported_once(small_chunks, book_id, emails)


@pytest.mark.parametrize(("kind", "status"), [("import_reject", "RejectedByWatchdog"), ("import_fail", "Failed")])
def test_a_failed_import_is_a_typed_error_and_the_other_chunks_complete(small_chunks, control, kind, status) -> None:
    _fault(control, kind=kind, count=1, path="import|Api.svc")
    with pytest.raises(ImportFailed) as caught:
        _import_once(small_chunks)
    error = caught.value
    assert error.import_status == status and error.report is None and error.rows > 0
    assert error.completed and all(o.report.new_contacts == o.rows for o in error.completed)
    assert sum(o.rows for o in error.completed) + error.rows == 12


def test_a_slow_import_is_polled_with_backoff_until_finished(sandbox, transport, control, sleeps) -> None:
    with connect(client_config(sandbox, transport, poll_initial=0.1, poll_factor=2.0), sleep=sleeps) as client:
        _fault(control, kind="import_delay", count=1, latency_ms=1000, path="import|Api.svc")
        started = time.monotonic()
        book_id, emails = _import_once(client)
        assert time.monotonic() - started >= 1.0
        _assert_imported_once(client, book_id, emails)
        assert client.counter.snapshot()["import_progress"] >= 3  # NotFinished answers were waited out
        assert max(sleeps.asked) > 2 * min(sleeps.asked)  # the waits grew (backoff), none beyond poll_max
        assert max(sleeps.asked) <= client.config.poll_max


def test_soap_faults_become_the_same_typed_errors(sandbox, control, sleeps: Sleeps) -> None:
    with connect(client_config(sandbox, "soap"), sleep=sleeps) as client:
        _fault(control, kind="soap_fault", count=1, path="GetAddressBooks",
               params={"code": "ERROR_ADDRESSBOOK_NOT_FOUND"})
        with pytest.raises(NotFound) as caught:
            list(client.address_books())
        assert caught.value.code == "ERROR_ADDRESSBOOK_NOT_FOUND"
        _fault(control, kind="soap_fault", count=2, path="GetAddressBooks",
               params={"code": "ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE"})
        list(client.address_books())  # transient: retried
        assert client.counter.snapshot()["retry:server_error"] == 2


@pytest.fixture
def limits(sandbox, control) -> Iterator[Any]:
    """Set the hourly quota of the second account; restored afterwards."""
    url = "/dotdigital/accounts/2/limits"

    def set_limits(**body: Any) -> dict:
        response = control.post(url, json=body)
        response.raise_for_status()
        return response.json()

    if set_limits()["mode"] != "hourly":
        pytest.fail("the suite's sandbox runs the hourly quota scheme")
    yield set_limits
    set_limits(remaining=10**9, window_seconds=3600)


def test_the_hourly_quota_is_waited_out(sandbox, transport, limits) -> None:
    asked: list[float] = []

    def sleep(seconds: float) -> None:  # really waits: the quota window has to roll over
        asked.append(seconds)
        time.sleep(seconds)

    with connect(client_config(sandbox, transport, account=1, quota_wait=0.5), sleep=sleep) as client:
        limits(remaining=0, window_seconds=1.5)
        book_id, emails = _import_once(client)
        assert client.counter.snapshot()["retry:quota"] >= 1
        assert 0.5 in asked  # no reset time is given in the hourly scheme: the configured wait
        _assert_imported_once(client, book_id, emails)


def test_an_exhausted_quota_that_does_not_reset_is_a_typed_error(sandbox, transport, limits, sleeps) -> None:
    with connect(client_config(sandbox, transport, account=1), sleep=sleeps) as client:
        limits(remaining=0, window_seconds=3600)
        with pytest.raises(QuotaExceeded) as caught:
            client.create_address_book(unique("capped"))
        assert caught.value.code == "ERROR_APIUSAGE_EXCEEDED"
    limits(remaining=10**9)
    with connect(client_config(sandbox, transport, account=1), sleep=sleeps) as client:
        assert client.find_address_book(unique("none")) is None


def _book_of_three(client: DotdigitalClient) -> tuple[int, list[int]]:
    book_id, _ = _import_once(client, 3)
    return book_id, sorted(c.id for c in client.address_book_contacts(book_id))


def test_a_bulk_removal_still_running_is_followed_until_it_completes(sandbox, control, sleeps: Sleeps) -> None:
    _fault(control, kind="deletion_delay", count=1, latency_ms=300, path="contacts/delete")
    with connect(client_config(sandbox, "rest"), sleep=sleeps) as client:
        book_id, ids = _book_of_three(client)
        started = time.monotonic()
        client.remove_contacts_from_address_book(book_id, ids[:2])
        assert time.monotonic() - started >= 0.3, "it returned before the deletion completed"
        assert [c.id for c in client.address_book_contacts(book_id)] == ids[2:]
        assert client.counter.snapshot()["deletion_progress"] >= 2
        assert "remove_contact_from_address_book" not in client.counter.snapshot()


def test_a_failed_bulk_removal_falls_back_to_one_call_per_contact(sandbox, control, sleeps: Sleeps) -> None:
    _fault(control, kind="deletion_fail", count=1, path="contacts/delete")
    with connect(client_config(sandbox, "rest"), sleep=sleeps) as client:
        book_id, ids = _book_of_three(client)
        client.remove_contacts_from_address_book(book_id, ids[:2])
        assert [c.id for c in client.address_book_contacts(book_id)] == ids[2:]
        assert client.counter.snapshot()["remove_contact_from_address_book"] == 2

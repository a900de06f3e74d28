"""Pure logic of the client: Retry-After, per-record outcomes of a `$batch`, credentials kept out of reprs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from dotdyn_pipeline.connectors.dataverse import (
    ClientCredentials,
    DataverseAuthError,
    DataverseConfig,
    DataverseUnavailable,
    MsalTokenSource,
    RecordOutcome,
)
from dotdyn_pipeline.connectors.dataverse.auth import renewal_time
from dotdyn_pipeline.connectors.dataverse.batch import BatchResponse
from dotdyn_pipeline.connectors.dataverse.client import DataverseClient, _outcomes
from dotdyn_pipeline.connectors.http import retry_after_seconds

SECRET = "sbx~super-secret-value"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier) == 0.0


def _error(status: int, code: str, message: str, content_id: str | None = None) -> BatchResponse:
    return BatchResponse(status, {}, json.dumps({"error": {"code": code, "message": message}}).encode(), content_id)


def test_outcomes_of_independent_requests_follow_request_order() -> None:
    responses = [BatchResponse(204, {}, b""), _error(400, "0x80044331", "too long"), BatchResponse(204, {}, b"")]
    outcomes = _outcomes(10, 4, responses, atomic=False)
    assert [(o.index, o.ok, o.status, o.code) for o in outcomes] == [
        (10, True, 204, ""), (11, False, 400, "0x80044331"), (12, True, 204, ""), (13, False, None, "NotRun")]
    assert outcomes[1].message == "too long"


def test_outcomes_of_a_failed_change_set() -> None:
    named = _outcomes(0, 3, [_error(412, "", "A record with matching key values already exists.", "2")],
                      atomic=True)
    assert [(o.ok, o.status, o.code) for o in named] == [
        (False, None, "RolledBack"), (False, 412, ""), (False, None, "RolledBack")]
    unnamed = _outcomes(0, 2, [_error(400, "0x80044331", "A validation error occurred.")], atomic=True)
    assert [(o.ok, o.status, o.code, o.message) for o in unnamed] == [
        (False, 400, "0x80044331", "A validation error occurred.")] * 2
    ok = _outcomes(0, 2, [BatchResponse(204, {}, b"", "1"), BatchResponse(204, {}, b"", "2")], atomic=True)
    assert all(o.ok for o in ok)


def test_secrets_stay_out_of_reprs() -> None:
    config = DataverseConfig("https://org.example", "https://login.example/tenant", "client-id",
                             client_secret=SECRET, private_key="-----BEGIN PRIVATE KEY-----x")
    source = MsalTokenSource(config.credentials(), config.org_url)
    with DataverseClient(config, tokens=source) as client:
        for text in (repr(config), repr(config.credentials()), repr(source), repr(client)):
            assert SECRET not in text and "PRIVATE KEY" not in text
    assert SECRET in source.secrets()


def test_credentials_choose_secret_or_certificate() -> None:
    assert ClientCredentials("https://a/t", "c", client_secret="s").msal_credential() == "s"
    assert ClientCredentials("https://a/t", "c", private_key="pem", thumbprint="AB").msal_credential() == {
        "private_key": "pem", "thumbprint": "AB"}
    with pytest.raises(ValueError, match="client secret"):
        ClientCredentials("https://a/t", "c").msal_credential()


def test_tokens_are_renewed_before_they_expire() -> None:
    assert renewal_time(1000.0, 3599.0) == 1000.0 + 3599.0 - 300.0  # Entra's usual hour: five minutes early
    assert renewal_time(1000.0, 60.0) == 1000.0 + 48.0  # a short-lived token: at four fifths of its life
    assert renewal_time(1000.0, 0.0) == 1000.0  # no lifetime given: renew on next use


class _NoTokens:
    def token(self) -> str:
        return "unused"

    def invalidate(self) -> None: ...

    def secrets(self) -> tuple[str, ...]:
        return ()

    def close(self) -> None: ...


def test_bulk_chunks_run_at_most_max_concurrency_at_once_and_keep_their_order() -> None:
    config = DataverseConfig("https://org.example", "https://login.example/t", "c", batch_size=10,
                             max_concurrency=2)
    lock, pair_running = threading.Lock(), threading.Event()
    in_flight, peak = 0, 0

    def work(offset: int, chunk: list[int]) -> list[RecordOutcome]:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight == 2:
                pair_running.set()
        pair_running.wait(5)  # the first two chunks overlap; a third would only run if the cap allowed it
        with lock:
            in_flight -= 1
        if offset == 20:
            raise DataverseUnavailable("still failing after retries", status=503, code="RetriesExhausted")
        return [RecordOutcome(offset + i, True, 204) for i in range(len(chunk))]

    with DataverseClient(config, tokens=_NoTokens()) as client:
        outcomes = client._in_chunks(list(range(45)), work)
    assert peak == 2
    assert [o.index for o in outcomes] == list(range(45))
    assert [o.ok for o in outcomes] == [True] * 20 + [False] * 10 + [True] * 15
    assert outcomes[25].code == "RetriesExhausted"


def test_an_auth_failure_in_a_bulk_chunk_is_raised() -> None:
    config = DataverseConfig("https://org.example", "https://login.example/t", "c", batch_size=2)

    def work(offset: int, chunk: list[int]) -> list[RecordOutcome]:
        raise DataverseAuthError("invalid_client", status=401)

    with DataverseClient(config, tokens=_NoTokens()) as client, pytest.raises(DataverseAuthError):
        client._in_chunks([1, 2, 3], work)


def test_a_read_page_is_freed_without_waiting_for_the_garbage_collector() -> None:
    """httpx 0.28 ties each response to its stream in a cycle; the shared sender breaks it (bounded memory)."""
    import gc
    import weakref

    from dotdyn_pipeline.connectors.http import CallCounter, RetryPolicy, send_with_retries

    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"value": []}))) as http:
        gc.disable()
        try:
            response = send_with_retries(http, lambda: http.build_request("GET", "https://org.example/"),
                                         kind="read", classify=lambda r: None, policy=RetryPolicy(),
                                         counter=CallCounter())
            assert response.json() == {"value": []}
            alive = weakref.ref(response)
            del response
            assert alive() is None
        finally:
            gc.enable()

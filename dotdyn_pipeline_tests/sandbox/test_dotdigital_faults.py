"""Faults switched on through the control endpoint, and the two rate-limit schemes, as a client sees them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from zeep.exceptions import Fault

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import message_of, poll, rest, soap

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Scope")


@pytest.fixture
def api(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with rest(sandbox) as client:
        yield client


def _switch_on(control: httpx.Client, **rule: Any) -> None:
    control.post("/faults/dotdigital", json={"count": 1, **rule}).raise_for_status()


def test_throttle_is_a_429_with_rate_limit_headers_then_calls_pass(api, control):
    _switch_on(control, kind="throttle", retry_after=7, path="^/v2/address-books$")
    throttled = api.get("/v2/address-books")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7" and throttled.headers["X-RateLimit-Reset"] == "7"
    assert all(name in throttled.headers for name in RATE_HEADERS)
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    assert message_of(throttled).endswith("ERROR_APIUSAGE_EXCEEDED")
    assert api.get("/v2/address-books").status_code == 200


def test_throttle_in_the_hourly_scheme_shape(api, control):
    _switch_on(control, kind="throttle", status=400)
    capped = api.get("/v2/data-fields")
    assert capped.status_code == 400
    assert "excess API activity" in message_of(capped) and message_of(capped).endswith("ERROR_APIUSAGE_EXCEEDED")


@pytest.mark.parametrize(("status", "code"), [(500, "ERROR_UNKNOWN"),
                                              (503, "ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE")])
def test_server_errors_carry_a_message(api, control, status, code):
    _switch_on(control, kind="server_error", status=status)
    failed = api.get("/v2/campaigns")
    assert failed.status_code == status and message_of(failed).endswith(code)
    assert api.get("/v2/campaigns").status_code == 200


def test_a_bare_status(api, control):
    _switch_on(control, kind="status", status=502)
    assert api.get("/v2/campaigns").status_code == 502


def test_dropped_connection(api, control):
    _switch_on(control, kind="drop")
    with pytest.raises(httpx.TransportError):
        api.get("/v2/campaigns")
    assert api.get("/v2/campaigns").status_code == 200


def test_a_connection_dropped_after_the_request_took_effect(api, control):
    name = f"dropped after {uuid.uuid4().hex[:10]}"
    _switch_on(control, kind="drop_after", method="POST", path="^/v2/address-books$")
    with pytest.raises(httpx.TransportError):
        api.post("/v2/address-books", json={"name": name, "visibility": "Private"})
    assert [book["name"] for book in api.get("/v2/address-books").json()].count(name) == 1


def test_latency(api, control):
    _switch_on(control, kind="latency", latency_ms=600)
    started = time.monotonic()
    assert api.get("/v2/account-info").status_code == 200
    assert time.monotonic() - started >= 0.6


def test_soap_fault_with_a_dotdigital_code(sandbox, control):
    _switch_on(control, kind="soap_fault", path="GetAddressBooks$",
               params={"code": "ERROR_ADDRESSBOOK_IN_USE", "message": "The address book is in use."})
    with soap(sandbox) as service:
        with pytest.raises(Fault, match="The address book is in use. ERROR_ADDRESSBOOK_IN_USE"):
            service.GetAddressBooks(select=10, skip=0)
        assert service.GetAddressBooks(select=10, skip=0)


def test_server_error_on_the_soap_endpoint_is_a_fault_envelope(sandbox, control):
    _switch_on(control, kind="server_error", status=503, path="Api.svc", method="POST")
    with soap(sandbox) as service:
        with pytest.raises(Fault, match="ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE"):
            service.GetCurrentAccountInfo()


def test_hourly_quota_counts_calls_and_caps_with_400(sandbox, control):
    with rest(sandbox, 1) as api:
        try:
            control.post("/dotdigital/accounts/2/limits", json={"remaining": 3}).raise_for_status()
            properties = {p["name"]: p["value"] for p in api.get("/v2/account-info").json()["properties"]}
            assert properties["ApiCallsRemaining"] == "2"  # this call counted before the figure was read
            assert api.get("/v2/address-books").status_code == 200
            assert api.get("/v2/address-books").status_code == 200
            capped = api.get("/v2/address-books")
            assert capped.status_code == 400 and message_of(capped).endswith("ERROR_APIUSAGE_EXCEEDED")
            with rest(sandbox, 0) as other:  # the quota is per account
                assert other.get("/v2/address-books").status_code == 200
            control.post("/dotdigital/accounts/2/limits", json={"window_seconds": 1}).raise_for_status()
            poll(lambda: api.get("/v2/address-books").status_code == 200, timeout=10)  # the hour rolled
        finally:
            control.post("/dotdigital/accounts/2/limits", json={"window_seconds": 3600, "remaining": 100000})


@pytest.fixture(scope="module")
def tiered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = SandboxSettings(seed=3, contacts=60, leads=10, accounts=5, email_accounts=1, days=2, options={
        "dotdigital.rate_limit": "tiered", "dotdigital.tier_limits": "low=1,medium=2,high=3",
        "dotdigital.tier_window_seconds": "3"})
    with running_sandbox(tmp_path_factory.mktemp("dotdigital-tiered"), settings) as contract:
        yield contract


def test_tiered_limits_send_headers_and_429_per_tier(tiered):
    with rest(tiered) as api:
        reads = [api.get("/v2/address-books") for _ in range(4)]  # the first read opens the tier's window
        assert [r.status_code for r in reads] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in reads] == ["2", "1", "0", "0"]
        assert all(r.headers["X-RateLimit-Scope"] == "highCallRate" and r.headers["X-RateLimit-Limit"] == "3"
                   for r in reads)
        assert 1 <= int(reads[3].headers["Retry-After"]) <= 3
        assert message_of(reads[3]).endswith("ERROR_APIUSAGE_EXCEEDED")
        write = api.post("/v2/address-books", json={"name": "Tiered"})  # another tier, another budget
        assert write.status_code == 201 and write.headers["X-RateLimit-Scope"] == "mediumCallRate"
        info = poll(lambda: (response := api.get("/v2/account-info")).status_code == 200 and response, timeout=10)
        assert "ApiCallsRemaining" not in {p["name"] for p in info.json()["properties"]}

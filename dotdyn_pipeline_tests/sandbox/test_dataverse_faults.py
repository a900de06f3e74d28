"""Each fault kind of the Dataverse stand-in, switched on through the control endpoint and seen over HTTPS."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of, web_api

# Fixtures shared by the Dataverse contract tests.
dv = helpers.dv
pdv = helpers.pdv
private_control = helpers.private_control
private_sandbox = helpers.private_sandbox


def _switch_on(control: httpx.Client, **rule) -> None:
    control.post("/faults/dataverse", json=rule).raise_for_status()


def test_throttle_answers_429_with_retry_after_and_the_documented_codes(dv, control):
    _switch_on(control, kind="throttle", count=1, retry_after=3, path="/contacts")
    throttled = dv.get("contacts", params={"$top": "1"})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "3"
    assert error_of(throttled) == {"code": "0x80072322", "message": "Number of requests exceeded the limit of "
                                                                    "6000 over time window of 300 seconds."}
    assert dv.get("contacts", params={"$top": "1"}).status_code == 200  # count=1: only the next request
    _switch_on(control, kind="throttle", count=1, params={"code": "0x80072326"})
    concurrency = dv.get("WhoAmI")
    assert concurrency.status_code == 429 and error_of(concurrency)["code"] == "0x80072326"


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_has_the_error_json(dv, control, status):
    _switch_on(control, kind="server_error", count=1, status=status)
    response = dv.get("WhoAmI")
    assert response.status_code == status and error_of(response)["message"]
    assert dv.get("WhoAmI").status_code == 200


def test_dropped_connection(dv, control):
    _switch_on(control, kind="drop", count=1, path="/contacts")
    with pytest.raises(httpx.TransportError):
        dv.get("contacts", params={"$top": "1"})
    assert dv.get("contacts", params={"$top": "1"}).status_code == 200


def test_a_connection_dropped_after_the_write_took_effect(pdv, private_control):
    contact_id = str(uuid.uuid4())
    _switch_on(private_control, kind="drop_after", count=1, method="PATCH", path="/contacts")
    with pytest.raises(httpx.TransportError):
        pdv.patch(f"contacts({contact_id})", json={"lastname": "Dropped after"})
    assert pdv.get(f"contacts({contact_id})").json()["lastname"] == "Dropped after"


def test_latency(dv, control):
    _switch_on(control, kind="latency", count=1, latency_ms=600)
    started = time.monotonic()
    assert dv.get("WhoAmI").status_code == 200
    assert time.monotonic() - started >= 0.6


def test_token_expiry_revokes_every_issued_token(pdv, private_control):
    assert pdv.get("WhoAmI").status_code == 200
    _switch_on(private_control, kind="token_expiry", count=1)
    revoked = pdv.get("WhoAmI")
    assert revoked.status_code == 401 and "revoked" in revoked.headers["www-authenticate"]
    assert pdv.get("WhoAmI").status_code == 401  # the old token stays invalid after the fault is used up


def test_expire_tokens_control_route_and_a_new_token_works(private_sandbox, private_control):
    with web_api(private_sandbox) as before:
        assert before.get("WhoAmI").status_code == 200
        private_control.post("/identity/expire-tokens").raise_for_status()
        assert before.get("WhoAmI").status_code == 401
    with web_api(private_sandbox) as after:
        assert after.get("WhoAmI").status_code == 200

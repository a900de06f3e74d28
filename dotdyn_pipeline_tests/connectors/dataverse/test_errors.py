"""Error parsing and typing; credentials never reach a message."""

from __future__ import annotations

import httpx
import pytest

from dotdyn_pipeline.connectors.dataverse.errors import (
    DataverseAuthError,
    DataverseError,
    DataverseNotFound,
    DataversePreconditionFailed,
    DataverseThrottled,
    DataverseUnavailable,
    DataverseValidationError,
    error_from_response,
    parse_error_body,
)


@pytest.mark.parametrize(("status", "kind"), [
    (400, DataverseValidationError), (401, DataverseAuthError), (403, DataverseAuthError),
    (404, DataverseNotFound), (412, DataversePreconditionFailed), (429, DataverseThrottled),
    (500, DataverseUnavailable), (503, DataverseUnavailable), (405, DataverseError),
])
def test_status_picks_the_class_and_code_and_message_travel(status: int, kind: type) -> None:
    body = {"error": {"code": "0x80040217", "message": "contact With Id = 1 Does Not Exist"}}
    response = httpx.Response(status, json=body, headers={"x-ms-service-request-id": "req-1"})
    error = error_from_response(response)
    assert type(error) is kind
    assert (error.status, error.code, error.message, error.request_id) == (
        status, "0x80040217", "contact With Id = 1 Does Not Exist", "req-1")
    assert str(error) == f"HTTP {status} [0x80040217]: contact With Id = 1 Does Not Exist"


def test_empty_or_foreign_bodies_fall_back_to_the_reason_phrase() -> None:
    assert parse_error_body(b"") == ("", "")
    assert parse_error_body(b"<html>") == ("", "")
    assert parse_error_body(b'{"error": "invalid"}') == ("", "")
    error = error_from_response(httpx.Response(401))
    assert str(error) == "HTTP 401: Unauthorized"


def test_echoed_credentials_are_redacted() -> None:
    token, secret = "eyJ0eXAiOiJKV1QiLCJhbGciOi.secret-token", "sbx~client-secret"
    response = httpx.Response(400, json={"error": {"code": "", "message": f"bad header Bearer {token} / {secret}"}})
    error = error_from_response(response, secrets=[token, secret, None])
    for text in (str(error), repr(error), error.message):
        assert token not in text and secret not in text
    assert "[redacted]" in str(error)

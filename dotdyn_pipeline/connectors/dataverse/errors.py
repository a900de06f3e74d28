"""Typed Dataverse errors that carry the service's error code and message, and never a credential.

The Web API answers errors as `{"error": {"code": "0x80040217", "message": "..."}}`; the code is often
empty and unrelated to the HTTP status, so the status picks the exception class and the code travels along.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import httpx

REDACTED = "[redacted]"


class DataverseError(Exception):
    """A request the Dataverse Web API (or its token authority) refused."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "",
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.request_id = message, status, code, request_id

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "Dataverse"
        code = f" [{self.code}]" if self.code else ""
        return f"{status}{code}: {self.message}"


class DataverseAuthError(DataverseError):
    """401/403, or the token authority refused the client credentials."""


class DataverseNotFound(DataverseError):
    """404: a record, table or route that does not exist."""


class DataversePreconditionFailed(DataverseError):
    """412: an If-Match / If-None-Match condition or duplicate detection stopped a write."""


class DataverseValidationError(DataverseError):
    """400: the request itself is wrong (bad column, bad literal, validation rule)."""


class DataverseThrottled(DataverseError):
    """429 or 503 still answered after the retry policy's last attempt (service protection limits)."""


class DataverseUnavailable(DataverseError):
    """5xx or dropped connections still failing after the retry policy's last attempt."""


_BY_STATUS: dict[int, type[DataverseError]] = {
    400: DataverseValidationError, 401: DataverseAuthError, 403: DataverseAuthError, 404: DataverseNotFound,
    412: DataversePreconditionFailed, 429: DataverseThrottled,
}


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret replaced, for messages that echo a request back."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def parse_error_body(body: bytes | str) -> tuple[str, str]:
    """The (code, message) of a Dataverse error body; ("", "") when empty or not the documented shape."""
    try:
        error = json.loads(body or b"{}").get("error")
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def error_class(status: int) -> type[DataverseError]:
    """The exception class for an HTTP status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return DataverseUnavailable if status >= 500 else DataverseError


def error_from_response(response: httpx.Response, secrets: Iterable[str | None] = ()) -> DataverseError:
    """The typed error for a failed response; the message falls back to the reason phrase."""
    code, message = parse_error_body(response.content)
    request_id = next((response.headers[h] for h in ("x-ms-service-request-id", "req_id", "x-ms-request-id")
                       if h in response.headers), None)
    message = scrub(message or response.reason_phrase or "no message", secrets)
    return error_class(response.status_code)(message, status=response.status_code, code=code,
                                             request_id=request_id)

"""What both transports share on the wire: one httpx client per account (TLS trust, Basic auth, timeout) and
sending with the shared retry policy, with exhausted retries turned into typed errors.

Sending email is the one thing that must not happen twice: SENDS are retried only after an answer that says
the request was not processed (throttling, the hourly quota, a connection never made); after a server error or
a dropped connection they raise SendOutcomeUnknown instead, for the caller to find out what happened."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.errors import (
    DotdigitalError,
    QuotaExceeded,
    RateLimited,
    SendOutcomeUnknown,
    ServiceUnavailable,
)
from dotdyn_pipeline.connectors.dotdigital.limits import QUOTA_CODE
from dotdyn_pipeline.connectors.http import (
    CallCounter,
    OutcomeUnknown,
    RetriesExhausted,
    Retry,
    send_with_retries,
    tls_verify,
)

#: The operations that send email (by the client's operation names, on either transport).
SENDS = frozenset({"send_campaign", "send_triggered_campaign"})


def http_client(config: DotdigitalConfig, base_url: str = "") -> httpx.Client:
    """An httpx client that trusts `config.ca_bundle` (or the system's CAs) and sends the API user's Basic auth."""
    verify = tls_verify(config.ca_bundle)
    return httpx.Client(base_url=base_url, auth=httpx.BasicAuth(config.api_user, config.api_password),
                        verify=verify, timeout=httpx.Timeout(config.timeout, connect=30.0),
                        headers={"Accept": "application/json", "User-Agent": "dotdyn-pipeline"})


def exhausted(exc: RetriesExhausted, operation: str) -> DotdigitalError:
    """The typed error for a call that still failed when the retry policy gave up."""
    text = f"gave up after {exc.attempts} attempts: {exc.reason}"
    if exc.reason.startswith("quota"):
        return QuotaExceeded(text, code=QUOTA_CODE, status=400, operation=operation)
    if exc.reason.startswith("throttle"):
        return RateLimited(text, status=429, operation=operation)
    return ServiceUnavailable(text, operation=operation)


def send(client: httpx.Client, build_request: Callable[[], httpx.Request], *, operation: str,
         classify: Callable[[httpx.Response], Retry | None], config: DotdigitalConfig, counter: CallCounter,
         sleep: Callable[[float], None]) -> httpx.Response:
    """Send with retries as `config.retry` allows (SENDS only when unprocessed); the accepted response is
    returned whatever its status."""
    try:
        return send_with_retries(client, build_request, kind=operation, classify=classify,
                                 policy=config.retry, counter=counter, sleep=sleep,
                                 idempotent=operation not in SENDS)
    except RetriesExhausted as exc:
        raise exhausted(exc, operation) from None
    except OutcomeUnknown as exc:
        raise SendOutcomeUnknown(f"sent, but no answer came back ({exc.reason}); it may or may not have happened",
                                 operation=operation) from None

"""What both transports share on the wire: one httpx client per account (TLS trust, Basic auth, timeout) and
sending with the shared retry policy, with exhausted retries turned into typed errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.errors import (
    DotdigitalError,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
)
from dotdyn_pipeline.connectors.dotdigital.limits import QUOTA_CODE
from dotdyn_pipeline.connectors.http import CallCounter, RetriesExhausted, Retry, send_with_retries, tls_verify


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
    """Send with retries as `config.retry` allows; the accepted response is returned whatever its status."""
    try:
        return send_with_retries(client, build_request, kind=operation, classify=classify,
                                 policy=config.retry, counter=counter, sleep=sleep)
    except RetriesExhausted as exc:
        raise exhausted(exc, operation) from None

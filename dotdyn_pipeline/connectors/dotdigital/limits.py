"""What Dotdigital's refusals mean for retrying: the hourly quota, tiered 429s, transient server errors.

- Flat-rate accounts over their hourly quota get HTTP 400 (SOAP: a fault) with ERROR_APIUSAGE_EXCEEDED and
  usually no reset time: wait `quota_wait` seconds (configurable) and try again, as the window rolls on.
- Tiered accounts get 429 with X-RateLimit-Limit/-Remaining/-Reset/-Scope. The sources disagree whether
  Reset is seconds to wait or an epoch time, so a value that can only be an epoch time is read as one.
- 5xx without an ERROR_ code (or with ERROR_UNKNOWN or the service-unavailable one) and dropped connections
  retry with backoff; a SOAP fault (HTTP 500) naming any other code is final.
Only the quota and the 429s say the request was not processed: a send is retried after them alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from dotdyn_pipeline.connectors.dotdigital.errors import error_code
from dotdyn_pipeline.connectors.http import Retry, retry_after_seconds

QUOTA_CODE = "ERROR_APIUSAGE_EXCEEDED"
TRANSIENT_CODES = frozenset({"ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE", "ERROR_UNKNOWN"})
_EPOCH_THRESHOLD = 1_000_000_000  # no sane wait is 31 years long: anything larger is an epoch time


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def reset_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds until the server lets us call again, from X-RateLimit-Reset or Retry-After, if given."""
    raw = _header(headers, "X-RateLimit-Reset")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is not None:
            return max(0.0, value - now() if value > _EPOCH_THRESHOLD else value)
    return retry_after_seconds(_header(headers, "Retry-After"), now)


def retry_decision(status: int, headers: Mapping[str, str], message: str | None, *, quota_wait: float,
                   now: Callable[[], float] = time.time) -> Retry | None:
    """Retry (when and why) for a refused call, or None when the refusal is final (or not a refusal)."""
    code = error_code(message)
    if status == 429:  # tiered limits, whatever the body says
        scope = _header(headers, "X-RateLimit-Scope") or "unknown"
        return Retry(f"throttle: HTTP 429 scope={scope}", after=reset_after(headers, now), unprocessed=True)
    if code == QUOTA_CODE:
        after = reset_after(headers, now)
        return Retry(f"quota: {code}", after=quota_wait if after is None else after, unprocessed=True)
    if status >= 500 and (code is None or code in TRANSIENT_CODES):
        return Retry(f"server_error: HTTP {status} {code or ''}".strip(), after=reset_after(headers, now))
    return None

"""Call rate limits per account, in one of Dotdigital's two schemes (reference/dotdigital.md §1, Rate limits).

- `hourly` (the flat scheme): `hourly_quota` calls per window (an hour by default); past it every call gets
  400 ERROR_APIUSAGE_EXCEEDED until the window rolls. account-info reports ApiCallsInLastHour and
  ApiCallsRemaining.
- `tiered`: each call belongs to a tier with its own per-minute limit; every answer carries X-RateLimit-Limit,
  X-RateLimit-Remaining, X-RateLimit-Reset (seconds until the window resets) and X-RateLimit-Scope; past the
  limit the call gets 429 with Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from dotdyn_pipeline.sandbox.context import SandboxSettings

TIERS = ("low", "medium", "high")


@dataclass
class Window:
    length: float
    started: float = field(default_factory=time.monotonic)
    calls: int = 0

    def roll(self, now: float) -> None:
        if now - self.started >= self.length:
            self.started, self.calls = now, 0

    def reset_in(self, now: float) -> int:
        return max(1, math.ceil(self.length - (now - self.started)))


@dataclass(frozen=True)
class Verdict:
    """Whether a call may proceed, the headers to add either way, and the refusal if not."""

    allowed: bool
    headers: dict[str, str]
    status: int = 200  # 400 (hourly) or 429 (tiered) when refused


class RateLimits:
    """The counters of every account; safe across threads."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.mode = settings.option("dotdigital.rate_limit", "hourly")
        if self.mode not in ("hourly", "tiered"):
            raise ValueError(f"dotdigital.rate_limit must be hourly or tiered, not {self.mode!r}")
        self.quota = int(settings.option("dotdigital.hourly_quota", "100000"))
        self.window = float(settings.option("dotdigital.window_seconds", "3600"))
        self.tier_window = float(settings.option("dotdigital.tier_window_seconds", "60"))
        limits = dict(part.split("=", 1) for part in
                      settings.option("dotdigital.tier_limits", "low=35,medium=150,high=600").split(","))
        self.tier_limits = {tier: int(limits.get(tier, 0) or 0) for tier in TIERS}
        self._windows: dict[tuple[str, str], Window] = {}
        self._lock = threading.Lock()

    def _window(self, account: str, tier: str) -> Window:
        key = (account, tier)
        if key not in self._windows:
            self._windows[key] = Window(self.window if tier == "hour" else self.tier_window)
        return self._windows[key]

    def call(self, account: str, tier: str) -> Verdict:
        """Count one call of `account` in `tier` (low / medium / high) and say whether it may proceed."""
        now = time.monotonic()
        with self._lock:
            if self.mode == "hourly":
                window = self._window(account, "hour")
                window.roll(now)
                if window.calls >= self.quota:
                    return Verdict(False, {}, 400)
                window.calls += 1
                return Verdict(True, {})
            window, limit = self._window(account, tier), self.tier_limits[tier]
            window.roll(now)
            reset = window.reset_in(now)
            allowed = window.calls < limit
            window.calls += allowed
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - window.calls)),
                       "X-RateLimit-Reset": str(reset), "X-RateLimit-Scope": f"{tier}CallRate"}
            if not allowed:
                headers["Retry-After"] = str(reset)
            return Verdict(allowed, headers, 200 if allowed else 429)

    def hourly_usage(self, account: str) -> tuple[int, int]:
        """(calls in the current hour, calls remaining) for account-info."""
        with self._lock:
            window = self._window(account, "hour")
            window.roll(time.monotonic())
            return window.calls, max(0, self.quota - window.calls)

    def set(self, account: str, remaining: int | None = None, window_seconds: float | None = None) -> dict:
        """Control: set the calls remaining in this hour, or the hour's length (both for tests)."""
        with self._lock:
            window = self._window(account, "hour")
            if window_seconds is not None:
                window.length = float(window_seconds)
                window.started = time.monotonic()
            if remaining is not None:
                window.calls = max(0, self.quota - int(remaining))
            return {"mode": self.mode, "quota": self.quota, "window_seconds": window.length,
                    "remaining": max(0, self.quota - window.calls)}


def rest_tier(method: str, path: str) -> str:
    """Imports and sends are the expensive tier, other writes the middle one, reads the cheap one."""
    if method == "POST" and (path.rstrip("/").endswith("/import") or "/import/" in path or path.endswith("/send")):
        return "low"
    return "high" if method == "GET" else "medium"


def soap_tier(operation: str) -> str:
    if operation.startswith("Import") or operation == "SendCampaign":
        return "low"
    return "high" if operation.startswith("Get") else "medium"

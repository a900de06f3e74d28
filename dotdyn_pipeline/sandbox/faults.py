"""Fault injection shared by every stand-in: rules switched on at run time through the control endpoint.

A rule names a kind and how often it fires (the next `count` matching requests, or each one with
`probability`), optionally only for paths matching `path` (a regular expression). The kinds every service
understands are handled here; a service renders the vendor-specific ones (a throttling body, a SOAP fault,
an import rejection) through its own `render` callback, or by asking `FaultPlan.take` itself.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

#: Kinds handled by the middleware for every service. `drop` loses the request before the service sees it;
#: `drop_after` lets the service handle it (its effect is made) and loses the answer: the client cannot tell
#: the two apart, which is what a client that sends a write again must be ready for.
LATENCY, DROP, DROP_AFTER, STATUS = "latency", "drop", "drop_after", "status"
#: Kinds whose response the service renders in its vendor's shape (throttling, server error).
THROTTLE, SERVER_ERROR = "throttle", "server_error"
MIDDLEWARE_KINDS = {LATENCY, DROP, DROP_AFTER, STATUS, THROTTLE, SERVER_ERROR}


@dataclass
class FaultRule:
    """One switched-on fault."""

    kind: str
    count: int | None = None  # fire for the next N matching requests; None = until cleared
    probability: float = 1.0  # chance that a matching request is hit
    path: str | None = None  # regular expression searched in the request path
    method: str | None = None  # only for this HTTP method
    status: int | None = None  # for `status` and `server_error` (default 503)
    retry_after: float | None = None  # seconds, for `throttle`
    latency_ms: int = 0  # for `latency`
    params: dict[str, Any] = field(default_factory=dict)  # anything a service-specific kind needs
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


class FaultPlan:
    """The rules of one service; safe to use from the event loop and from worker threads."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def take(self, kinds: set[str] | str, method: str, path: str) -> FaultRule | None:
        """Return the first rule of one of `kinds` that fires for this request, consuming one of its count."""
        wanted = {kinds} if isinstance(kinds, str) else kinds
        with self._lock:
            for rule in self._rules:
                if rule.kind not in wanted or not rule.matches(method, path):
                    continue
                if self._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None


Renderer = Callable[[FaultRule, Request], Response]


class FaultMiddleware:
    """ASGI middleware that applies a service's fault plan before the service sees the request."""

    def __init__(self, app: Callable[..., Awaitable[None]], plan: FaultPlan, render: Renderer) -> None:
        self.app, self.plan, self.render = app, plan, render

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if (rule := self.plan.take(LATENCY, method, path)) is not None:
            await asyncio.sleep(rule.latency_ms / 1000)
        rule = self.plan.take({DROP, DROP_AFTER, STATUS, THROTTLE, SERVER_ERROR}, method, path)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == DROP:
            await _drop(send)
        elif rule.kind == DROP_AFTER:
            await self.app(scope, receive, _unheard)
            await _drop(send)
        elif rule.kind == STATUS:
            await Response(status_code=rule.status or 500)(scope, receive, send)
        else:
            await self.render(rule, Request(scope, receive))(scope, receive, send)


async def _unheard(message: dict[str, Any]) -> None:
    """Where the answer of a request whose connection is dropped after it was handled goes: nowhere."""


async def _drop(send: Callable) -> None:
    """Promise a body and close the connection before sending it: the client sees a dropped connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"value": [', "more_body": False})


def rule_from_json(body: dict[str, Any]) -> FaultRule:
    """Build a rule from the control endpoint's JSON, rejecting unknown keys with a clear message."""
    known = set(FaultRule.__dataclass_fields__) - {"hits"}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(known)}")
    if "kind" not in body:
        raise ValueError("a fault needs a 'kind'")
    return FaultRule(**body)

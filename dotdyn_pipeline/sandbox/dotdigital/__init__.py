"""The Dotdigital stand-in: REST v2 under /v2/ and SOAP v2 at /v2/Api.svc, for several accounts.

Options (`dotdyn sandbox up --option key=value`):
- dotdigital.rate_limit: `hourly` (default) or `tiered`; dotdigital.hourly_quota (100000),
  dotdigital.window_seconds (3600), dotdigital.tier_limits ("low=35,medium=150,high=600"),
  dotdigital.tier_window_seconds (60);
- dotdigital.campaigns: historical campaigns per account (6);
- dotdigital.activities: the exact number of historical activity rows for the first account (campaigns are
  added until it is reached), e.g. 1000000 for the engagement benchmark.
- dotdigital.send_time_scale: how much faster than real time an API send's engagement arrives and a split
  test's period passes (1/720: an hour in five seconds).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dotdyn_pipeline.sandbox.context import SandboxContext, Service
from dotdyn_pipeline.sandbox.dotdigital.backend import NAME, Backend
from dotdyn_pipeline.sandbox.dotdigital.control import control_routes
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.rest import error_response, rest_app
from dotdyn_pipeline.sandbox.dotdigital.soap import SOAP_PATH, SoapEndpoint, fault_response
from dotdyn_pipeline.sandbox.faults import THROTTLE, FaultRule


def render_fault(rule: FaultRule, request: Request) -> Response:
    """`throttle` and `server_error` as the service sends them, in JSON for REST and as a fault for SOAP."""
    if rule.kind == THROTTLE:
        wait = str(max(1, round(rule.retry_after or 1)))
        if rule.status == 400:  # the flat hourly scheme's cap
            error, status, headers = ApiError("ERROR_APIUSAGE_EXCEEDED"), 400, {}
        else:
            error, status = ApiError("ERROR_APIUSAGE_EXCEEDED", status=429), 429
            headers = {"Retry-After": wait, "X-RateLimit-Limit": str(rule.params.get("limit", 35)),
                       "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": wait,
                       "X-RateLimit-Scope": str(rule.params.get("scope", "lowCallRate"))}
    else:
        status = rule.status or 503
        error = ApiError("ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE" if status == 503 else "ERROR_UNKNOWN",
                         status=status)
        headers = {"Retry-After": str(round(rule.retry_after))} if rule.retry_after else {}
    if request.url.path.lower() == SOAP_PATH.lower():
        return fault_response(error, status, headers)
    return error_response(error, headers)


def build(ctx: SandboxContext) -> Service:
    backend = Backend(ctx)
    soap = SoapEndpoint(backend)
    return Service(name=NAME, app=rest_app(backend, soap.routes()), render_fault=render_fault,
                   control_routes=control_routes(backend),
                   contract={"dotdigital_url": backend.url, "dotdigital_wsdl": f"{soap.address}?wsdl"},
                   on_shutdown=backend.shutdown)

"""Stand-in for the Dataverse Web API (`{dataverse_url}/api/data/v9.2/` unless an older version is chosen), bearer
tokens from the identity stand-in.

Options (`dotdyn sandbox up --option key=value`):
- `dataverse.api_version` (`v8.2` | `v9.0` | `v9.1` | `v9.2`, default `v9.2`): the one Web API version served,
  at `/api/data/<version>/` (the contract's `dataverse_api_version`); a request under any other version answers
  404 as the service does for a segment it does not know. Before v9.2 there are no CreateMultiple,
  UpdateMultiple and UpsertMultiple: they answer as an unknown action, and `sdkmessagefilters` lists none.
- `dataverse.untracked` (default `campaign,esc_crmfield`): tables without change tracking.
- `dataverse.untracked_track_changes` (`ignore` | `error`): what `Prefer: odata.track-changes` does on them.
- `dataverse.delta_token_max_age` (seconds, default 604800 = 7 days): how long a delta token stays valid.
- `dataverse.seed_workers` (default 2): processes generating contacts at start-up.
- `dataverse.key_index_seconds` (default 2): how long an alternate key created through the Web API stays
  Pending before its index is Active (or Failed, when the rows are not unique on it).
"""

from __future__ import annotations

import os
import secrets
import sys
import traceback
import uuid
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from dotdyn_pipeline.sandbox.context import SandboxContext, Service
from dotdyn_pipeline.sandbox.dataverse.api import Api
from dotdyn_pipeline.sandbox.dataverse.batch import BatchRunner
from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.control import control_routes
from dotdyn_pipeline.sandbox.dataverse.errors import (
    REQUESTS_LIMIT,
    SERVER,
    THROTTLE_MESSAGES,
    DataverseError,
    segment_not_found,
)
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.query import ChangeTracking, CollectionReader, Signer
from dotdyn_pipeline.sandbox.dataverse.schema import organisation_relationships, organisation_tables, tracked
from dotdyn_pipeline.sandbox.dataverse.security import SYSTEM_ADMINISTRATOR, Security, application_user_id
from dotdyn_pipeline.sandbox.dataverse.seed import Plan, install_solution_data, seed
from dotdyn_pipeline.sandbox.dataverse.store import Store
from dotdyn_pipeline.sandbox.dataverse.versions import served_version
from dotdyn_pipeline.sandbox.faults import FaultRule
from dotdyn_pipeline.sandbox.identity import authority, token_issuer
from dotdyn_pipeline.sandbox.people import record_id

TOKEN_EXPIRY = "token_expiry"  # noqa: S105 (a fault kind, not a secret)


def render_fault(rule: FaultRule, request: Request) -> Response:
    """Service protection (429 + Retry-After, code chosen by params.code) and server errors, as Dataverse sends them."""
    if rule.kind == "throttle":
        code = rule.params.get("code", REQUESTS_LIMIT)
        error = DataverseError(429, code, THROTTLE_MESSAGES.get(code, THROTTLE_MESSAGES[REQUESTS_LIMIT]),
                               {"Retry-After": str(max(1, round(rule.retry_after or 1)))})
    else:
        status = rule.status or 503
        error = DataverseError(status, SERVER, "The service is temporarily unavailable. Please try again later."
                               if status == 503 else "An unexpected error occurred.")
    response = ApiResponse.error(error)
    return Response(response.body, response.status, response.headers)


def _unknown_segment(path: str, api_root: str) -> str:
    """The first segment of `path` that the served Web API does not have: a version not served, or the first."""
    served, asked = api_root.strip("/").split("/"), path.strip("/").split("/")
    return next((a for s, a in zip(served, asked, strict=False) if a != s), asked[0])


def build(ctx: SandboxContext) -> Service:
    settings = ctx.settings
    option = settings.option
    org_url = ctx.urls["dataverse"]
    version = served_version(settings)
    api_root = version.root
    api_url = org_url + api_root
    tables = organisation_tables(settings.bare)
    catalog = Catalog(tables, tracked(tables, settings.options), float(option("dataverse.key_index_seconds", "2")),
                      many_to_many=organisation_relationships(settings.bare))
    store = Store(ctx.directory / "dataverse.sqlite", tables, creator=application_user_id(settings.seed))
    plan = Plan(settings.seed, settings.contacts, settings.leads, settings.accounts, settings.email_accounts)
    counts = seed(store, catalog, plan, ctx.accounts, settings.days,
                  int(option("dataverse.seed_workers", str(min(2, os.cpu_count() or 1)))), version.bulk_messages)
    print(f"dataverse: seeded {counts}", flush=True)
    tracking = ChangeTracking(catalog, float(option("dataverse.delta_token_max_age", str(7 * 86_400))),
                              option("dataverse.untracked_track_changes", "ignore"))
    reader = CollectionReader(store, Signer(secrets.token_bytes(32)), tracking, api_url)
    security = Security(store, settings.seed, ctx.client_id, api_url, version.name, catalog.tables)
    security.seed(settings.bare, [name.strip() for name in option("dataverse.app_user_roles", SYSTEM_ADMINISTRATOR)
                                  .split(",") if name.strip()])
    api = Api(store, catalog, reader, api_url, record_id(settings.seed, "organization", 0), security,
              bulk_messages=version.bulk_messages, remove_member_list=version.remove_member_list)
    if not settings.bare:
        api.solution_components.install()
    batch = BatchRunner(store, api.handle, api_root + "/")
    tokens = token_issuer(ctx)
    challenge = (f"Bearer authorization_uri={authority(ctx)}/oauth2/authorize, resource_id={org_url}/")
    faults = ctx.faults["dataverse"]

    def unauthorized(problem: str) -> ApiResponse:
        return ApiResponse(401, b"", {"WWW-Authenticate": f'{challenge}, error="invalid_token", '
                                                          f'error_description="{problem}"'})

    def respond(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        if not path.startswith(api_root + "/") and path != api_root:  # another version, or no Web API at all
            return ApiResponse.error(segment_not_found(_unknown_segment(path, api_root)))
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if faults.take(TOKEN_EXPIRY, method, path) is not None:
            tokens.revoke_all()
        if scheme.lower() != "bearer" or not token:
            return unauthorized("The request has no bearer token")
        problem = tokens.check(token.strip(), org_url)
        if problem:
            return unauthorized(problem)
        request = ApiRequest(method, path[len(api_root) + 1:], dict(parse_qsl(query, keep_blank_values=True)),
                             headers, body)
        if request.path.strip("/") == "$batch" and method == "POST":
            try:
                return batch.run(request)
            except DataverseError as error:
                return ApiResponse.error(error)
        return api.handle(request)

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        body = await request.body()
        try:
            response = respond(scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers,
                               body)
        except Exception:  # a bug in the stand-in: answer like the service does, keep the trace in the log
            traceback.print_exc(file=sys.stderr)
            response = ApiResponse.error(DataverseError(500, SERVER, "An unexpected error occurred."))
        request_id = str(uuid.uuid4())
        response.headers.setdefault("OData-Version", "4.0")
        response.headers["x-ms-service-request-id"] = request_id
        response.headers["REQ_ID"] = request_id
        await Response(response.body, response.status, response.headers)(scope, receive, send)

    def solution_data() -> dict[str, int]:
        """The solution's setup rows, and the people's roles, as an administrator enters them after installing."""
        rows = install_solution_data(store, catalog, plan, ctx.accounts, settings.days)
        return {**rows, "systemuserroles": security.assign_user_roles()}

    return Service(name="dataverse", app=app, render_fault=render_fault,
                   control_routes=control_routes(store, catalog, tracking, settings.seed, solution_data),
                   contract={"dataverse_url": org_url, "dataverse_api_version": version.name, "bare": settings.bare},
                   on_shutdown=store.close)

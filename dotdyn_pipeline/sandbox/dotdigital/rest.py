"""The REST v2 API under /v2/, on the paths, methods and status codes of the official swagger.

Every call is authenticated (Basic, the account's API user), counted against the rate limit, and answered
with camelCase JSON; query names and JSON keys are matched case-insensitively; errors are
{"message": "... ERROR_CODE"} (see errors.py).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from dotdyn_pipeline.sandbox.dotdigital import audience, reporting
from dotdyn_pipeline.sandbox.dotdigital.backend import Account, Backend
from dotdyn_pipeline.sandbox.dotdigital.errors import UNAUTHORIZED_MESSAGE, ApiError
from dotdyn_pipeline.sandbox.dotdigital.imports import merge_option
from dotdyn_pipeline.sandbox.dotdigital.limits import rest_tier
from dotdyn_pipeline.sandbox.dotdigital.store import AccountStore, iso, parse_date
from dotdyn_pipeline.sandbox.dotdigital.triggered import send_triggered
from dotdyn_pipeline.sandbox.dotdigital.upload import save_upload

log = logging.getLogger(__name__)

MAX_SELECT = 1000


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    headers=headers, media_type="application/json; charset=utf-8")


async def drain(request: Request) -> None:
    """Read and drop a body the answer does not need, so the connection ends its request cleanly."""
    async for _ in request.stream():
        pass


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


@dataclass
class Call:
    """One authenticated request, with what handlers need to read from it."""

    backend: Backend
    account: Account
    request: Request
    query: dict[str, str]  # names lower-cased: the service binds them case-insensitively
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> AccountStore:
        return self.account.store

    def int(self, name: str) -> int:
        return audience.as_int(self.params[name], name)

    def date(self, name: str = "date") -> str:
        return parse_date(str(self.params[name]))

    def page(self, default: int = MAX_SELECT) -> tuple[int, int]:
        """(select, skip): select 1-1000 (the API's maximum), skip >= 0."""
        select = audience.as_int(self.query.get("select", min(default, MAX_SELECT)), "select")
        skip = audience.as_int(self.query.get("skip", 0), "skip")
        if not 1 <= select <= MAX_SELECT or skip < 0:
            raise ApiError("ERROR_PARAMETER_INVALID", "select must be between 1 and 1000 and skip at least 0.")
        return select, skip

    def full_data(self) -> bool:
        return self.query.get("withfulldata", "false").strip().lower() == "true"


Handler = Callable[[Call], Any]


def _endpoint(backend: Backend, handler: Handler, status: int, raw_body: bool) -> Callable:
    async def endpoint(request: Request) -> Response:
        account = backend.authenticate(request)
        if account is None:
            await drain(request)
            return json_response({"message": UNAUTHORIZED_MESSAGE}, 401,
                                 {"WWW-Authenticate": 'Basic realm="apiconnector.com"'})
        verdict = backend.admit(account, rest_tier(request.method, request.url.path))
        if not verdict.allowed:
            await drain(request)
            code = "ERROR_APIUSAGE_EXCEEDED"
            return error_response(ApiError(code, status=verdict.status) if verdict.status == 429 else ApiError(code),
                                  verdict.headers)
        call = Call(backend, account, request, {k.lower(): v for k, v in request.query_params.items()},
                    params=dict(request.path_params))
        try:
            if not raw_body and (request.method in ("POST", "PUT") or request.url.path.endswith(COLLECTION_PATH)):
                raw = await request.body()
                try:
                    call.body = json.loads(raw) if raw.strip() else None
                except ValueError:
                    raise ApiError("ERROR_MALFORMED_REQUEST", "The body is not valid JSON.") from None
            if inspect.iscoroutinefunction(handler):
                result = await handler(call)
            else:
                result = await run_in_threadpool(handler, call)
        except ApiError as error:
            return error_response(error, verdict.headers)
        except Exception:  # a sandbox bug still answers in the service's shape, and is logged
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(ApiError("ERROR_UNKNOWN"), verdict.headers)
        if isinstance(result, Response):
            result.headers.update(verdict.headers)
            return result
        if status == 204:
            return Response(status_code=204, headers=verdict.headers)
        return json_response(result, status, verdict.headers)

    return endpoint


# --- handlers whose logic is not a single call into audience / reporting ------------------------------------

async def _import(call: Call) -> dict[str, str]:
    imports, store = call.backend.imports, call.store
    book_id = call.int("id") if "id" in call.params else None
    option = merge_option(call.params.get("mergeOption"))
    destination = imports.upload_path(store)
    await save_upload(call.request, destination)
    return await run_in_threadpool(imports.create, store, book_id, option, destination, call.request.method,
                                   call.request.url.path)


def _report_faults(call: Call) -> Response:
    path = call.backend.imports.faults_csv(call.store, call.params["importId"])
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{path.name}"'})


def _update_contact(call: Call) -> dict[str, Any]:
    return audience.update_contact(call.store, call.int("id"), call.body)


def _remove_from_book(call: Call) -> None:
    audience.remove_from_book(call.store, call.int("id"), [call.int("contactId")])


def _delete_book(call: Call) -> Response:
    audience.delete_book(call.store, call.int("id"))
    return Response(status_code=200)  # the swagger documents an empty 200


def _send_triggered(call: Call) -> Response:
    emails = audience.as_list(call.body) if call.request.url.path.endswith("/batch") else [call.body]
    send_triggered(call.store, emails)
    return Response(status_code=200)


#: GET with a JSON body, as the swagger describes ApiContact_GetMultipleContacts.
COLLECTION_PATH = "/contacts/retrieve-collection"

def routes(backend: Backend) -> list[Route]:
    """The REST routes, in the swagger's words."""
    b, r = audience, reporting
    table: list[tuple[str, str, Handler, int]] = [
        ("GET", "/account-info", lambda c: c.backend.account_info(c.account), 200),
        ("GET", "/server-time", lambda c: iso(datetime.now(UTC)), 200),
        ("GET", "/data-fields", lambda c: b.list_data_fields(c.store), 200),
        ("POST", "/data-fields", lambda c: b.create_data_field(c.store, c.body), 201),
        ("GET", "/address-books", lambda c: b.list_books(c.store, *c.page()), 200),
        ("GET", "/address-books/private", lambda c: b.list_books(c.store, *c.page(), "Private"), 200),
        ("GET", "/address-books/public", lambda c: b.list_books(c.store, *c.page(), "Public"), 200),
        ("POST", "/address-books", lambda c: b.create_book(c.store, c.body), 201),
        ("GET", "/address-books/{id}", lambda c: b.get_book(c.store, c.int("id")), 200),
        ("DELETE", "/address-books/{id}", _delete_book, 200),
        ("GET", "/address-books/{id}/campaigns", lambda c: r.campaigns_for_book(c.store, c.int("id"), *c.page()),
         200),
        ("GET", "/address-books/{id}/contacts",
         lambda c: b.book_contacts(c.store, c.backend.pager, c.int("id"), c.full_data(), *c.page()), 200),
        ("POST", "/address-books/{id}/contacts", lambda c: b.add_contact_to_book(c.store, c.int("id"), c.body), 200),
        ("DELETE", "/address-books/{id}/contacts/{contactId}", _remove_from_book, 204),
        ("POST", "/address-books/{id}/contacts/delete",
         lambda c: b.delete_from_book_in_bulk(c.store, c.backend.faults, c.int("id"), c.body, c.request.method,
                                              c.request.url.path), 202),
        ("GET", "/contacts/deletion/{deletionId}", lambda c: b.deletion_status(c.store, c.params["deletionId"]),
         200),
        ("POST", "/address-books/{id}/contacts/import", _import, 202),
        ("POST", "/address-books/{id}/contacts/import/with-merge-option/{mergeOption}", _import, 202),
        ("POST", "/contacts/import", _import, 202),
        ("POST", "/contacts/import/with-merge-option/{mergeOption}", _import, 202),
        ("GET", "/contacts/import/{importId}", lambda c: c.backend.imports.status(c.store, c.params["importId"]),
         200),
        ("GET", "/contacts/import/{importId}/report",
         lambda c: c.backend.imports.report(c.store, c.params["importId"]), 200),
        ("GET", "/contacts/import/{importId}/report-faults", _report_faults, 200),
        ("GET", "/address-books/{id}/contacts/modified-since/{date}",
         lambda c: b.book_contacts(c.store, c.backend.pager, c.int("id"), c.full_data(), *c.page(2000), c.date()),
         200),
        ("GET", "/address-books/{id}/contacts/unsubscribed-since/{date}",
         lambda c: b.book_unsubscribed_since(c.store, c.int("id"), c.date(), *c.page()), 200),
        ("POST", "/address-books/{id}/contacts/unsubscribe",
         lambda c: b.unsubscribe_from_book(c.store, c.int("id"), c.body), 200),
        ("POST", "/address-books/{id}/contacts/resubscribe",
         lambda c: b.resubscribe(c.store, c.body, True, c.int("id")), 200),
        ("POST", "/address-books/{id}/contacts/resubscribe-with-no-challenge",
         lambda c: b.resubscribe(c.store, c.body, False, c.int("id")), 200),
        ("GET", "/contacts", lambda c: b.list_contacts(c.store, c.backend.pager, c.full_data(), *c.page()), 200),
        ("POST", "/contacts", lambda c: b.create_contact(c.store, c.body), 201),
        ("GET", "/contacts/suppressed-since/{date}", lambda c: b.suppressions_since(c.store, c.date(), *c.page()),
         200),
        ("GET", "/contacts/unsubscribed-since/{date}",
         lambda c: b.suppressions_since(c.store, c.date(), *c.page(), reasons=("Unsubscribed",)), 200),
        ("GET", "/contacts/modified-since/{date}",
         lambda c: b.list_contacts(c.store, c.backend.pager, c.full_data(), *c.page(2000), "modified", c.date()),
         200),
        ("GET", "/contacts/created-since/{date}",
         lambda c: b.list_contacts(c.store, c.backend.pager, c.full_data(), *c.page(), "created", c.date()), 200),
        ("POST", "/contacts/unsubscribe", lambda c: b.unsubscribe(c.store, c.body), 200),
        ("PUT", "/contacts/suppress-contacts", lambda c: b.suppress_many(c.store, c.body), 200),
        ("POST", "/contacts/resubscribe", lambda c: b.resubscribe(c.store, c.body, True), 200),
        ("POST", "/contacts/resubscribe-with-no-challenge", lambda c: b.resubscribe(c.store, c.body, False), 200),
        ("GET", COLLECTION_PATH, lambda c: b.retrieve_collection(c.store, c.body), 200),
        ("GET", "/contacts/{identifier}", lambda c: b.get_contact(c.store, c.params["identifier"]), 200),
        ("PUT", "/contacts/{id}", _update_contact, 200),
        ("GET", "/campaigns", lambda c: r.list_campaigns(c.store, *c.page()), 200),
        ("GET", "/campaigns/with-activity-since/{date}", lambda c: r.list_campaigns(c.store, *c.page(), c.date()),
         200),
        ("POST", "/campaigns/send", lambda c: c.backend.sends.send(c.store, c.body), 202),
        ("GET", "/campaigns/send/{sendId}", lambda c: c.backend.sends.status(c.store, c.params["sendId"]), 200),
        ("POST", "/email/triggered-campaign", _send_triggered, 200),
        ("POST", "/email/triggered-campaign/batch", _send_triggered, 200),
        ("GET", "/campaigns/{id}", lambda c: r.get_campaign(c.store, c.int("id")), 200),
        ("GET", "/campaigns/{id}/summary", lambda c: r.summary(c.store, c.int("id")), 200),
        ("GET", "/campaigns/{id}/activities",
         lambda c: r.activities(c.store, c.backend.pager, c.int("id"), None, *c.page()), 200),
        ("GET", "/campaigns/{id}/activities/since-date/{date}",
         lambda c: r.activities(c.store, c.backend.pager, c.int("id"), c.date(), *c.page(2000)), 200),
        ("GET", "/campaigns/{id}/clicks/since-date/{date}",
         lambda c: r.clicks(c.store, c.backend.pager, c.int("id"), c.date(), *c.page()), 200),
        ("GET", "/campaigns/{id}/roi-details/since-date/{date}",
         lambda c: r.roi_details(c.store, c.backend.pager, c.int("id"), c.date(), *c.page()), 200),
        ("GET", "/campaigns/{id}/hard-bouncing-contacts",
         lambda c: r.hard_bouncing(c.store, c.int("id"), c.full_data(), *c.page()), 200),
    ]
    return [Route(f"/v2{path}", _endpoint(backend, handler, status, handler is _import), methods=[method])
            for method, path, handler, status in table]


async def _not_found(request: Request, exc: HTTPException) -> Response:
    """The service's answer to a path or method it does not serve."""
    message = f"No HTTP resource was found that matches the request URI '{request.url}'."
    if exc.status_code == 405:
        message = "The requested resource does not support this http method."
    return json_response({"message": message}, exc.status_code)


def rest_app(backend: Backend, extra_routes: list[Route]) -> Starlette:
    return Starlette(routes=[*routes(backend), *extra_routes], exception_handlers={HTTPException: _not_found})

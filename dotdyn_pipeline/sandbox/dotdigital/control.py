"""Control routes under {control_url}/dotdigital/: look inside an account and set state for tests.

`{account}` is the account's number (1-based, the order of sandbox.json's `accounts`) or its API user.
`POST accounts/{account}/resubscribe {"email", "address_book_id"?}` stands for a contact confirming a
resubscribe (the service's challenge), which no API call can do on the contact's behalf.
`GET accounts/{account}/sends` lists every send the account was asked for (campaign sends and triggered
emails), so tests count real sends; `POST accounts/{account}/sends/{send_id}/cancel` cancels a campaign send.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dotdyn_pipeline.sandbox.dotdigital import audience
from dotdyn_pipeline.sandbox.dotdigital.backend import Account, Backend
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.store import SUPPRESSED_STATUSES, normalise_email
from dotdyn_pipeline.sandbox.dotdigital.triggered import triggered_sends


def _overview(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    store = account.store
    counts = {table: store.scalar(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (fixed table names)
              for table in ("contacts", "address_books", "campaigns", "activities", "clicks", "roi", "suppressions",
                            "imports")}
    return {"number": account.index + 1, "name": account.login.name, "api_user": account.login.api_user,
            "rate_limit": backend.limits.mode, "counts": counts}


def _book_members(backend: Backend, account: Account, request: Request, body: Any) -> list[dict[str, Any]]:
    book_id = audience.as_int(request.path_params["book"], "book")
    audience.get_book(account.store, book_id)
    return [{"id": row[0], "email": row[1], "status": row[2]} for row in account.store.all(
        "SELECT c.id, c.email, c.status FROM members m JOIN contacts c ON c.id = m.contact_id "
        "WHERE m.book_id = ? ORDER BY c.id", book_id)]


def _contact(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    store = account.store
    row = store.one("SELECT id, email, status, data FROM contacts WHERE email = ?",
                    normalise_email(request.path_params["email"]))
    if row is None:
        raise ApiError("ERROR_CONTACT_NOT_FOUND")
    suppression = store.one("SELECT reason, date_removed FROM suppressions WHERE contact_id = ?", row[0])
    return {"id": row[0], "email": row[1], "status": row[2], "data": json.loads(row[3]),
            "address_books": [book for (book,) in store.all("SELECT book_id FROM members WHERE contact_id = ? "
                                                             "ORDER BY book_id", row[0])],
            "unsubscribed_from": [book for (book,) in store.all("SELECT book_id FROM book_unsubscribes "
                                                                "WHERE contact_id = ?", row[0])],
            "suppression": None if suppression is None else {"reason": suppression[0], "date": suppression[1]}}


def _suppress(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    reason = str(audience.field(body, "reason", "Suppressed"))
    if reason not in SUPPRESSED_STATUSES:
        raise ApiError("ERROR_PARAMETER_INVALID", f"reason must be one of {', '.join(SUPPRESSED_STATUSES)}")
    email = normalise_email(audience.field(body, "email"))
    if not email:
        raise ApiError("ERROR_PARAMETER_INVALID", "email is required")
    return audience.suppress(account.store, email, reason)


def _resubscribe(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    """The contact confirmed a resubscribe (as after the challenge email): Subscribed again, and back in the
    address book `address_book_id` when one is given."""
    book = audience.field(body, "address_book_id")
    target = {"unsubscribedContact": {"email": normalise_email(audience.field(body, "email"))}}
    return audience.resubscribe(account.store, target, False,
                                None if book is None else audience.as_int(book, "address_book_id"))


def _limits(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    return backend.limits.set(account.login.api_user, audience.field(body, "remaining"),
                              audience.field(body, "window_seconds"))


def _book_imports(backend: Backend, account: Account, request: Request, body: Any) -> list[dict[str, Any]]:
    """Every import into one address book, oldest first: those whose answer a client never heard included."""
    book_id = audience.as_int(request.path_params["book"], "book")
    return [{"id": row[0], "status": row[1]} for row in account.store.all(
        "SELECT id, status FROM imports WHERE book_id = ? ORDER BY seq", book_id)]


def _import(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    row = account.store.one("SELECT id, book_id, merge_option, status, outcome, report, created, finished "
                            "FROM imports WHERE id = ?", request.path_params["import_id"].lower())
    if row is None:
        raise ApiError("ERROR_IMPORT_NOT_FOUND")
    keys = ("id", "address_book_id", "merge_option", "status", "planned_outcome", "report", "created", "finished")
    return {**dict(zip(keys, row, strict=True)), "report": json.loads(row[5]) if row[5] else None}


#: What `/engagement` returns per kind: the stored rows whose time is in [since, until), the time column first.
ENGAGEMENT_SQL = {
    "campaigns": "SELECT last_activity, id, name, status FROM campaigns WHERE status = 'Sent'",
    "activities": "SELECT last_activity, campaign_id, contact_id, email, num_opens, num_clicks FROM activities",
    "clicks": "SELECT date_clicked, campaign_id, contact_id, email, url FROM clicks",
    "roi": "SELECT date_entered, campaign_id, contact_id, email, marker_name, value FROM roi",
    "suppressions": "SELECT s.date_removed, s.contact_id, c.email, s.reason FROM suppressions s "
                    "JOIN contacts c ON c.id = s.contact_id",
}


def _engagement(backend: Backend, account: Account, request: Request, body: Any) -> list[list[Any]]:
    """Stored engagement rows of one kind with their time in [since, until) (ISO; both optional)."""
    sql = ENGAGEMENT_SQL.get(request.path_params["kind"])
    if sql is None:
        raise ApiError("ERROR_PARAMETER_INVALID", f"kind must be one of {', '.join(ENGAGEMENT_SQL)}")
    column = sql.split()[1].rstrip(",")
    joiner = " AND " if " WHERE " in sql else " WHERE "
    since, until = request.query_params.get("since", ""), request.query_params.get("until", "9999")
    return [list(row) for row in account.store.all(f"{sql}{joiner}{column} >= ? AND {column} < ? ORDER BY 2, 3",
                                                   since, until)]


def _sends(backend: Backend, account: Account, request: Request, body: Any) -> list[dict[str, Any]]:
    """Every send the account was asked for, oldest first: campaign sends (with their status and, once they
    went out, their recipients) and triggered emails; `?type=campaign|triggered` and `?campaign_id=` narrow it."""
    kind, campaign = request.query_params.get("type"), request.query_params.get("campaign_id")
    if kind not in (None, "campaign", "triggered"):
        raise ApiError("ERROR_PARAMETER_INVALID", "type must be campaign or triggered")
    campaign_id = None if campaign is None else audience.as_int(campaign, "campaign_id")
    found = [] if kind == "triggered" else backend.sends.executed(account.store, campaign_id)
    return found + ([] if kind == "campaign" else triggered_sends(account.store, campaign_id))


def _cancel_send(backend: Backend, account: Account, request: Request, body: Any) -> dict[str, Any]:
    return backend.sends.cancel(account.store, request.path_params["send_id"])


Action = Callable[[Backend, Account, Request, Any], Any]


def _route(backend: Backend, path: str, action: Action, method: str = "GET") -> Route:
    async def endpoint(request: Request) -> Response:
        account = backend.account(request.path_params["account"])
        if account is None:
            return JSONResponse({"error": f"no account {request.path_params['account']!r}"}, status_code=404)
        body = (await request.json() if await request.body() else None) if method == "POST" else None
        try:
            return JSONResponse(await run_in_threadpool(action, backend, account, request, body))
        except ApiError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)

    return Route(path, endpoint, methods=[method])


def control_routes(backend: Backend) -> list[Route]:
    async def accounts(request: Request) -> Response:
        return JSONResponse([await run_in_threadpool(_overview, backend, account, request, None)
                             for account in backend.accounts])

    async def refused_sign_ins(request: Request) -> Response:
        return JSONResponse(backend.refused_sign_ins())

    return [
        Route("/accounts", accounts),
        Route("/refused-sign-ins", refused_sign_ins),
        _route(backend, "/accounts/{account}", _overview),
        _route(backend, "/accounts/{account}/address-books/{book}/contacts", _book_members),
        _route(backend, "/accounts/{account}/address-books/{book}/imports", _book_imports),
        _route(backend, "/accounts/{account}/contacts/{email}", _contact),
        _route(backend, "/accounts/{account}/suppress", _suppress, "POST"),
        _route(backend, "/accounts/{account}/resubscribe", _resubscribe, "POST"),
        _route(backend, "/accounts/{account}/limits", _limits, "POST"),
        _route(backend, "/accounts/{account}/imports/{import_id}", _import),
        _route(backend, "/accounts/{account}/engagement/{kind}", _engagement),
        _route(backend, "/accounts/{account}/sends", _sends),
        _route(backend, "/accounts/{account}/sends/{send_id}/cancel", _cancel_send, "POST"),
    ]

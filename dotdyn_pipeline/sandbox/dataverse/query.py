"""Reading collections: `$select`, `$filter`, `$orderby`, `$top`, `$count`, `$expand`, paging and change tracking.

Paging follows the documented contract: `Prefer: odata.maxpagesize=N` (default and maximum 5000) is echoed
in `Preference-Applied`, and while rows remain the page carries `@odata.nextLink` with an opaque, signed
`$skiptoken` (a keyset position, so a page costs the same however deep it is). `$top=N` ends the result
after N rows whatever the page size: pages are never larger than what is left of it and the page that
reaches it has no `@odata.nextLink`. `fetchXml` is fetchxml.py's (routed by api.py; `/$count` does not take
it). Query languages the stand-in does not run (`sql`, saved and user queries) and OData options it does not
serve (`$apply`, `$skip`, `$search`...) answer the documented 400, never the whole table. With
`Prefer: odata.track-changes` the last page carries `@odata.deltaLink`; following it returns the rows
written since (by version) and then `$deletedEntity` entries for rows deleted since. The rows of a collection-valued
navigation property (a `Scope`) are read the same way, without change tracking, their next links leading back to
the navigation property.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import CHANGE_TRACKING, DataverseError, bad_request
from dotdyn_pipeline.sandbox.dataverse.expand import parse_expand, with_expansions
from dotdyn_pipeline.sandbox.dataverse.messages import JSON_TYPE, ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import compile_filter, parse_orderby, parse_select
from dotdyn_pipeline.sandbox.dataverse.schema import Table
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, VERSION, Store, q, row_json_sql

MAX_PAGE = 5000
QUERY_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$count", "$expand", "$skiptoken", "$deltatoken"}
#: Dataverse's own query parameters (not OData system options), which the stand-in does not run.
UNSERVED_QUERIES = ("fetchXml", "sql", "savedQuery", "userQuery")
NOT_WITH_TRACKING = ("$filter", "$orderby", "$expand", "$top")


class Signer:
    """Opaque tokens: base64url JSON with an HMAC, so tampered or foreign tokens are recognised."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def dump(self, value: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")
        return payload + "." + self._mac(payload)

    def load(self, token: str) -> dict[str, Any] | None:
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None

    def _mac(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class ChangeTracking:
    """The change-tracking switches: which tables are tracked (the catalog says) and how long a delta token
    lives."""

    catalog: Catalog
    max_age: float  # seconds a delta token stays valid
    untracked_mode: str = "ignore"  # what `Prefer: odata.track-changes` does on an untracked table: ignore|error
    expired_before: float = 0.0  # delta tokens issued before this moment are expired (control route)


@dataclass(frozen=True)
class Scope:
    """The rows of a collection-valued navigation property: the SQL condition that picks them among the table's,
    and the path (below the API root) their next links go back to."""

    where: str
    params: tuple[Any, ...]
    path: str


def _encode(query: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={quote(value, safe=chr(36) + ',()=:@/*')}" for name, value in query)


def keyset_after(order: list[tuple[str, bool]], values: list[Any],
                 column_sql: Callable[[str], str] = q) -> tuple[str, list[Any]]:
    """SQL for "comes after `values` in `order`" (SQLite sorts NULL first ascending, last descending);
    `column_sql` makes each order name SQL (a quoted column by default)."""
    (name, desc), value = order[0], values[0]
    column = column_sql(name)
    if len(order) == 1:
        if value is None:
            return ("0", []) if desc else (f"{column} IS NOT NULL", [])
        return (f"({column} < ? OR {column} IS NULL)", [value]) if desc else (f"{column} > ?", [value])
    rest, rest_params = keyset_after(order[1:], values[1:], column_sql)
    if value is None:
        if desc:
            return f"({column} IS NULL AND {rest})", rest_params
        return f"({column} IS NOT NULL OR ({column} IS NULL AND {rest}))", rest_params
    beyond = f"({column} < ? OR {column} IS NULL)" if desc else f"{column} > ?"
    return f"({beyond} OR ({column} = ? AND {rest}))", [value, value, *rest_params]


def _check_options(query: dict[str, str]) -> None:
    """The documented 400 for a query option or query language the stand-in does not serve."""
    unknown = sorted({name for name in query if name.startswith("$")} - QUERY_OPTIONS)
    unserved = [name for name in query if name in UNSERVED_QUERIES]
    if unknown or unserved:
        raise bad_request(f"The query parameter '{(unknown or unserved)[0]}' is not supported.")


def _error(message: str) -> DataverseError:
    return DataverseError(400, CHANGE_TRACKING, message)


class CollectionReader:
    """Answers GET on an entity set (and `/$count`)."""

    def __init__(self, store: Store, signer: Signer, tracking: ChangeTracking, api_url: str) -> None:
        self.store, self.signer, self.tracking, self.api_url = store, signer, tracking, api_url

    def count(self, table: Table, request: ApiRequest) -> ApiResponse:
        _check_options(request.query)
        where, params = self._where(table, request, None)
        return ApiResponse(200, str(self.store.count(table, where, params)).encode(),
                           {"Content-Type": "text/plain", "OData-Version": "4.0"})

    def read(self, table: Table, request: ApiRequest, scope: Scope | None = None) -> ApiResponse:
        query = request.query
        _check_options(query)
        prefer = request.prefer
        applied = []
        page_size = MAX_PAGE
        if "odata.maxpagesize" in prefer:
            try:
                page_size = max(1, min(MAX_PAGE, int(prefer["odata.maxpagesize"])))
            except ValueError as exc:
                raise bad_request("The value of the 'odata.maxpagesize' preference is not a number.") from exc
            applied.append(f"odata.maxpagesize={page_size}")
        annotations = prefer.get("odata.include-annotations")
        if annotations:
            applied.append(f"odata.include-annotations={annotations}")
        lookup_names = bool(annotations) and any(part in ("*", "Microsoft.Dynamics.CRM.*",
                                                          "Microsoft.Dynamics.CRM.lookuplogicalname")
                                                 for part in annotations.strip('"').split(","))
        select = parse_select(table, query.get("$select"))
        sql_json = with_expansions(row_json_sql(table, tuple(select) if select else None, lookup_names),
                                   parse_expand(table, query.get("$expand"), self.tracking.catalog))
        tracked = self.tracking.catalog.is_tracked(table.logical_name) and scope is None
        track = "odata.track-changes" in prefer
        if (track or "$deltatoken" in query) and not tracked:
            if "$deltatoken" in query or self.tracking.untracked_mode == "error":
                raise _error(f"Change tracking is not enabled for the entity '{table.logical_name}'.")
            track = False
        if "$deltatoken" in query or track:
            for option in NOT_WITH_TRACKING:
                if option in query:
                    raise _error(f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.')
            applied.append("odata.track-changes")
        state = self._position(query)
        context = f"{self.api_url}/$metadata#{table.entity_set}"
        if select:
            context += "(" + ",".join(c.web_name for c in select) + ")"
        if "$deltatoken" in query:
            rows, more, state = self._delta_page(table, sql_json, query["$deltatoken"], state, page_size)
            context += "/$delta"
        else:
            if "$top" in query:
                page_size = min(page_size, self._top(query) - state.get("served", 0))
            rows, more, state = self._page(table, request, sql_json, state, page_size, track, scope)
        head: dict[str, Any] = {"@odata.context": context}
        if query.get("$count", "").lower() == "true" and "$deltatoken" not in query:
            total = self.store.count(table, *self._where(table, request, scope))
            head["@odata.count"] = min(total, MAX_PAGE)
            if annotations:
                head["@Microsoft.Dynamics.CRM.totalrecordcount"] = total
                head["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > MAX_PAGE
        tail = ""
        kept = [(n, v) for n, v in query.items() if n not in ("$skiptoken", "$deltatoken")]
        if more:
            link_query = kept + ([("$deltatoken", query["$deltatoken"])] if "$deltatoken" in query else [])
            link_query.append(("$skiptoken", self.signer.dump(state)))
            link = f"{self.api_url}/{scope.path if scope else table.entity_set}?{_encode(link_query)}"
            tail = ',"@odata.nextLink":' + json.dumps(link)
        elif "high" in state:
            token = self.signer.dump({"v": state["high"], "t": time.time()})
            link = f"{self.api_url}/{table.entity_set}?{_encode([*kept, ('$deltatoken', token)])}"
            tail = ',"@odata.deltaLink":' + json.dumps(link)
        body = (json.dumps(head, ensure_ascii=False)[:-1] + ',"value":[' + ",".join(rows) + "]" + tail + "}")
        headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
        if applied:
            headers["Preference-Applied"] = ",".join(applied)
        return ApiResponse(200, body.encode(), headers)

    def _where(self, table: Table, request: ApiRequest, scope: Scope | None) -> tuple[str, list[Any]]:
        text = request.query.get("$filter")
        where, params = "1", []
        if text:
            aliases = {name: value for name, value in request.query.items() if name.startswith("@")}
            where, params = compile_filter(table, text, aliases)
        if scope is not None:
            where, params = f"({where}) AND ({scope.where})", [*params, *scope.params]
        return where, params

    @staticmethod
    def _top(query: dict[str, str]) -> int:
        try:
            top = int(query["$top"])
        except ValueError as exc:
            raise bad_request(f"Invalid value '{query['$top']}' for $top query option found.") from exc
        if top < 0:
            raise bad_request(f"Invalid value '{top}' for $top query option found.")
        return top

    def _position(self, query: dict[str, str]) -> dict[str, Any]:
        if "$skiptoken" not in query:
            return {}
        state = self.signer.load(query["$skiptoken"])
        if state is None:
            raise bad_request("The $skiptoken is not valid; follow @odata.nextLink unchanged.")
        return state

    def _page(self, table: Table, request: ApiRequest, sql_json: str, state: dict[str, Any], page_size: int,
              track: bool, scope: Scope | None) -> tuple[list[str], bool, dict[str, Any]]:
        where, params = self._where(table, request, scope)
        if track and "high" not in state:
            state = {**state, "high": self.store.version}
        if page_size <= 0:
            return [], False, state
        order = [(c.name, d) for c, d in parse_orderby(table, request.query.get("$orderby"))]
        if not order or order[-1][0] != table.primary_key:
            order.append((ROWID, False))  # the default order is creation order (Dataverse's sequential GUIDs)
        after = state.get("after")
        if after is not None:
            condition, extra_params = keyset_after(order, after)
            where, params = f"({where}) AND {condition}", [*params, *extra_params]
        sql_order = ", ".join(f"{q(name)} {'DESC' if desc else 'ASC'}" for name, desc in order)
        found = self.store.rows(table, sql_json, where, params, sql_order, page_size + 1,
                                tuple(q(name) for name, _ in order))
        if found:  # a keyset position: the order values of the page's last row
            state = {**state, "after": list(found[min(len(found), page_size) - 1][3:])}
        more = len(found) > page_size
        served = state.get("served", 0) + min(len(found), page_size)
        if "$top" in request.query:
            more = more and served < self._top(request.query)
        return [row[2] for row in found[:page_size]], more, {**state, "served": served}

    def _delta_page(self, table: Table, sql_json: str, delta_token: str, state: dict[str, Any],
                    page_size: int) -> tuple[list[str], bool, dict[str, Any]]:
        token = self.signer.load(delta_token)
        if token is None or "v" not in token:
            raise _error("The change tracking token is not valid. Synchronize again without a delta token.")
        age = time.time() - token["t"]
        if age > self.tracking.max_age or token["t"] < self.tracking.expired_before:
            raise _error("The change tracking token has expired. Changes are kept for "
                         f"{self.tracking.max_age:g} seconds; synchronize again without a delta token.")
        high = state.get("high", self.store.version)
        state = {**state, "high": high}
        rows: list[str] = []
        if state.get("phase", "rows") == "rows":
            after = max(token["v"], state.get("after", 0))
            found = self.store.rows(table, sql_json, f"{q(VERSION)} > ? AND {q(VERSION)} <= ?", [after, high],
                                    q(VERSION), page_size + 1)
            rows = [row[2] for row in found[:page_size]]
            if len(found) > page_size:
                return rows, True, {**state, "after": found[page_size - 1][1]}
            state = {**state, "phase": "deleted", "after": token["v"]}
        room = page_size - len(rows)
        gone = self.store.deletions(table, state["after"], high, room + 1)
        context = json.dumps(f"{self.api_url}/$metadata#{table.entity_set}/$deletedEntity")
        rows += ['{"@odata.context":' + context + ',"id":"' + record + '","reason":"deleted"}'
                 for record, _ in gone[:room]]
        if len(gone) > room:
            return rows, True, {**state, "after": gone[room - 1][1] if room else state["after"]}
        return rows, False, state

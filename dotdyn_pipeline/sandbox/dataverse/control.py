"""Control routes of the Dataverse stand-in (under `{control_url}/dataverse/`): inspect and change its data
without going through the Web API, for tests, benchmarks and demos.

- `GET  /stats` -> rows per table and the current version.
- `GET  /rows/{entity_set}?$filter=...&$select=...&limit=N` -> `{"value": [...]}` rows as the Web API shows them.
- `POST /rows/{entity_set}` with a row in Web API shape (lookups as `_x_value`, system columns such as
  `modifiedon`, `statecode` and `_createdby_value` writable; a row created without `_createdby_value` is created
  by the application user) -> creates it, or updates the row with the same primary key.
- `DELETE /rows/{entity_set}/{id}` -> deletes it (change tracking reports the deletion).
- `POST /seed-changes` `{"set": "contacts", "seed": 1, "modify": N, "change_emails": N, "delete": N,
  "create": N}` -> deterministic changes for incremental runs; answers the ids touched per kind.
- `POST /delta-tokens/expire` -> every delta token issued so far is expired.
- `POST /solution-data` -> the solution's setup rows (email accounts, lists activated and owned, data labels,
  mappings, settings, preferences, CRM fields) written into an organisation whose solution was provisioned,
  and the seeded users' roles given, as an administrator would configure them; 409 naming the missing tables and
  columns before that.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request
from dotdyn_pipeline.sandbox.dataverse.odata import compile_filter, parse_select
from dotdyn_pipeline.sandbox.dataverse.query import ChangeTracking
from dotdyn_pipeline.sandbox.dataverse.schema import Table
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, Store, q, row_json_sql, type_column
from dotdyn_pipeline.sandbox.dataverse.writes import convert
from dotdyn_pipeline.sandbox.people import record_id


def _stored_values(table: Table, body: dict[str, Any]) -> dict[str, Any]:
    """A Web-API-shaped row -> stored values; unlike the Web API, lookups and system columns are writable."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        column = table.by_web_name.get(name) or table.by_name.get(name)
        if column is None:
            if "@" in name:
                continue
            raise bad_request(f"Unknown column '{name}' of {table.logical_name}.")
        if column.name == "versionnumber":
            continue
        if column.is_lookup:
            values[column.name] = value.lower() if isinstance(value, str) else None
            if type_column(column):
                values[type_column(column)] = body.get(f"{name}@Microsoft.Dynamics.CRM.lookuplogicalname",
                                                       column.targets[0])
        else:
            values[column.name] = convert(table, column, value)
    return values


def control_routes(store: Store, catalog: Catalog, tracking: ChangeTracking, seed: int,
                   solution_data: Callable[[], dict[str, int]]) -> list[Route]:
    table_of = catalog.require_set

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except DataverseError as error:
                return JSONResponse(error.body(), status_code=error.status)
        return endpoint

    async def stats(request: Request) -> JSONResponse:
        tables = {t.entity_set: store.count(t, "1", []) for t in catalog.tables()}
        return JSONResponse({"version": store.version, "tables": tables})

    async def list_rows(request: Request) -> Response:
        table = table_of(request.path_params["set"])
        where, params = ("1", [])
        if request.query_params.get("$filter"):
            where, params = compile_filter(table, request.query_params["$filter"])
        select = parse_select(table, request.query_params.get("$select"))
        limit = int(request.query_params.get("limit", "1000"))
        found = store.rows(table, row_json_sql(table, tuple(select) if select else None, False), where, params,
                           q(ROWID), limit)
        return Response('{"value":[' + ",".join(r[2] for r in found) + "]}", media_type="application/json")

    async def put_row(request: Request) -> Response:
        table = table_of(request.path_params["set"])
        body = await request.json()
        if not isinstance(body, dict):
            raise bad_request("The body must be one row as a JSON object.")
        values = _stored_values(table, body)
        with store.transaction():
            row = store.find(table, {table.primary_key: values[table.primary_key]}) \
                if values.get(table.primary_key) else None
            row = store.update(table, row, values) if row else store.insert(table, values)
        return Response(store.row_json(table, row[ROWID]), media_type="application/json",
                        status_code=200)

    async def delete_row(request: Request) -> JSONResponse:
        table = table_of(request.path_params["set"])
        row = store.find(table, {table.primary_key: request.path_params["id"].lower()})
        if row is None:
            return JSONResponse({"deleted": False}, status_code=404)
        with store.transaction():
            store.delete(table, row)
        return JSONResponse({"deleted": True})

    async def seed_changes(request: Request) -> JSONResponse:
        body = await request.json()
        table = table_of(body.get("set", "contacts"))
        rng = random.Random(f"{seed}:{body.get('seed', 0)}")
        high = store.db.execute(f"SELECT MAX({q(ROWID)}) FROM {q(table.logical_name)}").fetchone()[0] or 0
        wanted = {kind: int(body.get(kind, 0)) for kind in ("modify", "change_emails", "delete")}
        picked = rng.sample(range(1, high + 1), min(high, sum(wanted.values())))
        touched: dict[str, list[str]] = {kind: [] for kind in [*wanted, "create"]}
        with store.transaction():
            for kind, count in wanted.items():
                for rowid in picked[:count]:
                    row = store.find(table, {ROWID: rowid})
                    if row is None:
                        continue
                    number = len(touched[kind])
                    if kind == "delete":
                        store.delete(table, row)
                    elif kind == "modify":
                        store.update(table, row, {"jobtitle": f"Changed {body.get('seed', 0)}-{number}"}
                                     if "jobtitle" in table.by_name else {})
                    else:
                        store.update(table, row, {"emailaddress1": f"changed.{body.get('seed', 0)}.{number}"
                                                                   "@example.com"})
                    touched[kind].append(row[table.primary_key])
                picked = picked[count:]
            for number in range(int(body.get("create", 0))):
                new_id = record_id(seed, f"{table.logical_name}-created:{body.get('seed', 0)}", number)
                values = {table.primary_key: new_id}
                if "firstname" in table.by_name:  # a person: contact or lead
                    values.update(firstname=f"New{number}", lastname="Person", fullname=f"New{number} Person",
                                  emailaddress1=f"new.{body.get('seed', 0)}.{number}@example.com",
                                  donotbulkemail=0)
                if store.find(table, {table.primary_key: new_id}) is None:
                    store.insert(table, values)
                    touched["create"].append(new_id)
        return JSONResponse(touched)

    async def install_solution_data(request: Request) -> JSONResponse:
        return JSONResponse({"rows": solution_data()})

    async def expire_delta_tokens(request: Request) -> JSONResponse:
        tracking.expired_before = time.time()
        return JSONResponse({"expired_before": tracking.expired_before})

    return [
        Route("/stats", guarded(stats)),
        Route("/rows/{set}", guarded(list_rows)),
        Route("/rows/{set}", guarded(put_row), methods=["POST"]),
        Route("/rows/{set}/{id}", guarded(delete_row), methods=["DELETE"]),
        Route("/seed-changes", guarded(seed_changes), methods=["POST"]),
        Route("/delta-tokens/expire", guarded(expire_delta_tokens), methods=["POST"]),
        Route("/solution-data", guarded(install_solution_data), methods=["POST"]),
    ]


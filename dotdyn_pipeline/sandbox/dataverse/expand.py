"""`$expand` of navigation properties on row queries, rendered by SQLite inside each row's JSON.

A lookup column is its own single-valued navigation property (`primarycontactid`); a lookup that may point at
several tables has one per target (`parentcustomerid_account`). A many-to-many relationship gives each of its
tables a collection-valued navigation property (`esc_emailsend_list`), expanded as an array of the related rows
(empty when there are none). An expanded row carries its primary key and the columns of the nested `$select`
(all columns without it), as the Web API answers. `sdkmessagefilter`'s `sdkmessageid` leads to the message, of
which the stand-in knows the name only. The one-to-many collections, nested `$expand` and the other nested options
are not served: the documented 400.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog, Side
from dotdyn_pipeline.sandbox.dataverse.errors import bad_request
from dotdyn_pipeline.sandbox.dataverse.odata import split_segment, split_top_level
from dotdyn_pipeline.sandbox.dataverse.schema import BULK_MESSAGES, Column, Table
from dotdyn_pipeline.sandbox.dataverse.store import ROWID, q, value_sql

#: sdkmessage ids of the messages sdkmessagefilters name (stable, so that a client may cache them).
MESSAGE_IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessage:{name}")) for name in BULK_MESSAGES}


@dataclass(frozen=True)
class Expansion:
    name: str  # the navigation property, as the response names it
    sql: str  # a SQL expression giving the related row's JSON text, or NULL


def _navigations(table: Table, catalog: Catalog) -> dict[str, tuple[Column, Table]]:
    """Navigation property -> (lookup column, target table) of every single-valued navigation of `table`."""
    found = {}
    for column in table.columns:
        if not column.is_lookup:
            continue
        targets = [catalog.table(t) for t in column.targets if catalog.get(t)]
        for target in targets:
            found[column.name if len(targets) == 1 else f"{column.name}_{target.logical_name}"] = (column, target)
    return found


def _columns(target: Table, options: str, navigation: str) -> list[Column]:
    """The columns asked for inside `nav(...)`: the primary key first, then `$select`'s (all without one)."""
    select = None
    for option in (o for o in options.split(";") if o.strip()):
        name, _, value = option.strip().partition("=")
        if name != "$select":
            raise bad_request(f"The query option '{name}' inside $expand of '{navigation}' is not supported.")
        select = [s.strip() for s in value.split(",") if s.strip()]
    if select is None:
        return list(target.columns)
    columns = [target.columns[0]]
    for name in select:
        column = target.by_web_name.get(name)
        if column is None:
            raise bad_request(f"Could not find a property named '{name}' on type "
                              f"'Microsoft.Dynamics.CRM.{target.logical_name}'.")
        if column not in columns:
            columns.append(column)
    return columns


def _message(table: Table, options: str) -> Expansion:
    """sdkmessagefilter's `sdkmessageid`: the message's id and name (the only columns the stand-in keeps)."""
    known = {"sdkmessageid", "name"}
    for option in (o for o in options.split(";") if o.strip()):
        name, _, value = option.strip().partition("=")
        wrong = [s for s in value.split(",") if s.strip() not in known] if name == "$select" else [name]
        if wrong:
            raise bad_request(f"Could not find a property named '{wrong[0].strip()}' on type "
                              "'Microsoft.Dynamics.CRM.sdkmessage'.")
    ids = " ".join(f"WHEN '{name}' THEN '{message_id}'" for name, message_id in MESSAGE_IDS.items())
    column = f"{q(table.logical_name)}.{q('sdkmessagename')}"
    return Expansion("sdkmessageid", f"json_object('name', {column}, 'sdkmessageid', CASE {column} {ids} END)")


def _collection(table: Table, side: Side, options: str, catalog: Catalog) -> Expansion:
    """A many-to-many navigation property: the related rows (through the intersect table) as a JSON array, in the
    order they were created."""
    target = catalog.table(side.other)
    parts = []
    for chosen in _columns(target, options, side.navigation):
        parts += [f"'{chosen.web_name}'", value_sql(chosen, "_related")]
    rows = (f"SELECT json_object({', '.join(parts)}) AS item FROM {q(target.logical_name)} AS _related "
            f"JOIN {q(side.relationship.intersect)} AS _link ON _link.{q(side.theirs)} = _related."
            f"{q(target.primary_key)} WHERE _link.{q(side.mine)} = {q(table.logical_name)}.{q(table.primary_key)} "
            f"ORDER BY _related.{q(ROWID)}")
    return Expansion(side.navigation, f"json((SELECT json_group_array(json(item)) FROM ({rows})))")


def parse_expand(table: Table, text: str | None, catalog: Catalog) -> list[Expansion]:
    """`$expand` -> the expansions to add to each row; anything the stand-in does not serve is a 400."""
    if not text:
        return []
    expansions, navigations = [], _navigations(table, catalog)
    for item in split_top_level(text):
        name, options, rest = split_segment(item.strip())
        if rest:
            raise bad_request(f"The $expand item '{item.strip()}' is not valid.")
        options = options or ""
        if table.logical_name == "sdkmessagefilter" and name == "sdkmessageid":
            expansions.append(_message(table, options))
            continue
        side = catalog.side(table.logical_name, name)
        if side is not None:
            expansions.append(_collection(table, side, options, catalog))
            continue
        if name not in navigations:
            raise bad_request(f"Could not find a navigation property named '{name}' on type "
                              f"'Microsoft.Dynamics.CRM.{table.logical_name}'; the stand-in expands lookups and "
                              "many-to-many relationships only.")
        column, target = navigations[name]
        parts = []
        for chosen in _columns(target, options, name):
            parts += [f"'{chosen.web_name}'", value_sql(chosen)]
        related = (f"(SELECT json_object({', '.join(parts)}) FROM {q(target.logical_name)} AS _expanded "
                   f"WHERE _expanded.{q(target.primary_key)} = {q(table.logical_name)}.{q(column.name)})")
        expansions.append(Expansion(name, f"json({related})"))
    return expansions


def with_expansions(row_sql: str, expansions: list[Expansion]) -> str:
    """A row's `json_object(...)` SQL with the expanded navigation properties appended."""
    if not expansions:
        return row_sql
    extra = ", ".join(f"'{e.name}', {e.sql}" for e in expansions)
    return row_sql[:-1] + ", " + extra + ")"

"""Writing rows as the Web API does: payload checks, `@odata.bind` lookups, upsert and conditional headers, and a
new row's default values (a Yes/No column left out is No, or the default its definition names)."""

from __future__ import annotations

import datetime as dt
import uuid
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import (
    VALIDATION,
    VERSION_MISMATCH,
    DataverseError,
    bad_request,
    duplicate,
    key_not_found,
    not_found,
)
from dotdyn_pipeline.sandbox.dataverse.odata import DECIMAL, NUMERIC, normalize_datetime, parse_key, split_segment
from dotdyn_pipeline.sandbox.dataverse.schema import READ_ONLY, Column, Table
from dotdyn_pipeline.sandbox.dataverse.store import VERSION, Store, type_column


def _type_error(value: Any, column: Column) -> DataverseError:
    return bad_request(f"Cannot convert the literal '{value}' to the expected type '{column.edm_type}'.")


def convert(table: Table, column: Column, value: Any) -> Any:
    """A JSON payload value -> the stored value of `column`, checked like the service checks it."""
    if value is None:
        return None
    kind = column.type
    if kind in ("String", "Memo"):
        if not isinstance(value, str):
            raise _type_error(value, column)
        if column.max_length and len(value) > column.max_length:
            raise DataverseError(400, VALIDATION, f"A validation error occurred. The length of the '{column.name}' "
                                 f"attribute of the '{table.logical_name}' entity exceeded the maximum allowed "
                                 f"length of '{column.max_length}'.")
        return value
    if kind in NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, column)
        return value
    if kind in DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, column)
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise _type_error(value, column)
        return int(value)
    if kind in ("DateTime", "DateOnly") and isinstance(value, str):
        if kind == "DateTime":
            return normalize_datetime(value)
        try:
            return dt.date.fromisoformat(value[:10]).isoformat()
        except ValueError as exc:
            raise _type_error(value, column) from exc
    if kind == "Uniqueidentifier" and isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise _type_error(value, column) from exc
    raise _type_error(value, column)


@lru_cache(maxsize=256)
def _defaults(table: Table) -> dict[str, Any]:
    """The stored default value of each column that has one."""
    return {c.name: int(c.default) for c in table.columns if c.default is not None}


def parse_etag(text: str) -> int | None:
    """`W/"123"` or `"123"` -> 123; None when the header is not a version ETag."""
    text = text.strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else None


class Writer:
    """Creates, updates, upserts and deletes rows of a `Store`, answering with the service's errors."""

    def __init__(self, store: Store, catalog: Catalog, api_url: str) -> None:
        self.store, self.catalog, self.api_url = store, catalog, api_url
        self.api_path = urlsplit(api_url).path + "/"  # /api/data/<version>/

    # -- addressing --------------------------------------------------------------------------------------
    def entity_url(self, table: Table, row: dict[str, Any]) -> str:
        return f"{self.api_url}/{table.entity_set}({row[table.primary_key]})"

    def locate(self, table: Table, key: dict[str, Any]) -> dict[str, Any] | None:
        """The row `key` names: its primary key, or an alternate key whose index is active."""
        if list(key) != [table.primary_key]:
            self.catalog.require_active_key(table, key)
        return self.store.find(table, key)

    def require(self, table: Table, key: dict[str, Any]) -> dict[str, Any]:
        row = self.locate(table, key)
        if row is None:
            if list(key) == [table.primary_key]:
                raise not_found(table.logical_name, key[table.primary_key])
            raise key_not_found(table.logical_name)
        return row

    def resolve_reference(self, reference: str) -> tuple[Table, dict[str, Any]]:
        """`/contacts(<id>)`, `contacts(key='v')` or an absolute entity URL -> (table, row)."""
        path = reference.split(self.api_path, 1)[1] if self.api_path in reference else reference.lstrip("/")
        name, key, rest = split_segment(path)
        table = self.catalog.by_set(name)
        if table is None or key is None or rest:
            raise bad_request(f"The reference '{reference}' is not a valid entity URL.")
        return table, self.require(table, parse_key(table, key))

    def referenced(self, logical_name: str, reference: Any) -> str:
        """The id of the `logical_name` row an entity reference (`@odata.id`, `$id`) names: 404 when there is no
        such row, 400 when the reference is missing or names a row of another table."""
        if not isinstance(reference, str):
            raise bad_request("The request must name the record: {\"@odata.id\": \"<entity URL>\"} or ?$id=<entity "
                              "URL>.")
        table, row = self.resolve_reference(reference)
        if table.logical_name != logical_name:
            raise bad_request(f"The reference '{reference}' does not name a {logical_name}.")
        return row[table.primary_key]

    # -- payloads ----------------------------------------------------------------------------------------
    def values(self, table: Table, body: Any) -> dict[str, Any]:
        """The stored values a JSON payload sets (lookups through `nav@odata.bind`)."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object describing one record.")
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name.endswith("@odata.bind"):
                if name.removesuffix("@odata.bind").lower() in READ_ONLY:
                    continue  # createdby and the like: the service sets them itself
                values.update(self._bind(table, name.removesuffix("@odata.bind"), value))
            elif name == "@odata.type":
                if value != f"Microsoft.Dynamics.CRM.{table.logical_name}":
                    raise bad_request(f"The @odata.type '{value}' does not match the entity set "
                                      f"'{table.entity_set}'.")
            elif name.startswith("@odata.") or "@" in name:
                continue  # other annotations are informational
            elif name in READ_ONLY:
                continue  # the service sets these itself
            elif name in table.by_name and not table.by_name[name].is_lookup:
                values[name] = convert(table, table.by_name[name], value)
            elif name in table.by_web_name:
                raise bad_request(f"Invalid property '{name}' was found in entity 'Microsoft.Dynamics.CRM."
                                  f"{table.logical_name}'. Set lookups with '{table.by_web_name[name].name}"
                                  "@odata.bind'.")
            else:
                raise bad_request(f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM."
                                  f"{table.logical_name}'. Make sure to only use property names that are defined "
                                  "by the type or mark the type as open type.")
        return values

    def _bind(self, table: Table, navigation: str, reference: Any) -> dict[str, Any]:
        wanted = navigation.lower()
        for column in table.columns:
            if not column.is_lookup:
                continue
            names = {column.name: None, **{f"{column.name}_{t}": t for t in column.targets}}
            if wanted not in names:
                continue
            if reference is None:
                return {column.name: None, **({type_column(column): None} if type_column(column) else {})}
            if not isinstance(reference, str):
                raise bad_request(f"The value of '{navigation}@odata.bind' must be an entity URL.")
            target, row = self.resolve_reference(reference)
            if target.logical_name not in column.targets or names[wanted] not in (None, target.logical_name):
                raise bad_request(f"The navigation property '{navigation}' cannot point at a "
                                  f"'{target.logical_name}' record.")
            bound = {column.name: row[target.primary_key]}
            if type_column(column):
                bound[type_column(column)] = target.logical_name
            if table.logical_name == "listmember" and column.name == "entityid":
                bound["entitytype"] = target.logical_name
            return bound
        raise bad_request(f"An undeclared property '{navigation}' which only has property annotations in the "
                          "payload but no property value was found in the payload. In OData, only declared "
                          "navigation properties and declared named streams can be represented as properties "
                          "without values.")

    # -- operations --------------------------------------------------------------------------------------
    @staticmethod
    def _new_row(table: Table, values: dict[str, Any]) -> dict[str, Any]:
        """The values of a row about to be created: its columns' default values, then those given."""
        return {**_defaults(table), **values}

    def create(self, table: Table, body: Any) -> dict[str, Any]:
        values = self.values(table, body)
        key = values.get(table.primary_key)
        if key is not None and self.locate(table, {table.primary_key: key}) is not None:
            raise duplicate()
        return self.store.insert(table, self._new_row(table, values))

    def upsert(self, table: Table, key: dict[str, Any], body: Any, if_match: str | None = None,
               if_none_match: str | None = None) -> tuple[dict[str, Any], bool]:
        """PATCH semantics: update if the key exists, else create; returns (row, created)."""
        values = self.values(table, body)
        row = self.locate(table, key)
        if if_none_match is not None and if_none_match.strip() == "*" and row is not None:
            raise duplicate()
        if if_match is not None:
            if row is None:
                self.require(table, key)
            expected = parse_etag(if_match)
            if if_match.strip() != "*" and expected != row[VERSION]:
                raise DataverseError(412, VERSION_MISMATCH, "The version of the existing record doesn't match "
                                     "the RowVersion property provided.")
        if row is not None:
            values.pop(table.primary_key, None)
            return self.store.update(table, row, values), False
        return self.store.insert(table, self._new_row(table, {**values, **key})), True

    def delete(self, table: Table, key: dict[str, Any]) -> dict[str, Any]:
        row = self.require(table, key)
        self.store.delete(table, row)
        return row

"""FetchXML over the Web API: `GET /<entityset>?fetchXml=<url-encoded FetchXML>`, compiled to one SQL query.

What it runs, as Microsoft documents FetchXML ("Query data using FetchXml", "Page results using FetchXml", the
FetchXml reference, "Use FetchXml with Web API"):
- `fetch`: `count` (rows a page, at most 5000), `page`, `paging-cookie`, `top` (at most 5000, not with
  paging), `distinct`, `returntotalrecordcount`; `entity` (its name must be the entity set's table);
  `attribute` (with `alias`), `all-attributes` (also what an entity without attributes returns);
  `filter` (`type="and|or"`, nested); `condition` (`attribute`, `operator`, `value` or `<value>` children,
  `entityname` naming a link-entity's alias) with the operators in OPERATORS; `link-entity` (`name`, `from`,
  `to`, `link-type` inner or outer, `alias`, nested, with its own attributes and filters, which join on the
  link as Dataverse applies them); `order` (`attribute`, `descending`) on the query's table.
- Rows come back as the Web API renders them: `@odata.etag`, the table's primary key always (unless
  `distinct`), lookups as `_name_value`, a link-entity's attributes as `alias.attribute` (a link without an
  alias is named `<table><n>`), and no property whose value is null (Microsoft: unlike OData queries,
  FetchXml queries don't return properties with null values). Lookup annotations only when asked
  (`Prefer: odata.include-annotations`).
- Paging: while rows remain, the answer carries `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`, the
  documented `<cookie pagenumber="2" pagingcookie="..." istracking="False" />` whose `pagingcookie` is
  `<cookie page="1"><attribute last=".." first=".." />...<primarykey last="{GUID}" first="{GUID}" /></cookie>`
  URL-encoded twice as Dataverse sends it, and `@Microsoft.Dynamics.CRM.morerecords: true` when the client
  asked for that annotation (`*`, `Microsoft.Dynamics.CRM.*` or by name, as Microsoft's SDK for Python does).
  A request for the page after the cookie's continues after the cookie's last row (a keyset, so deep pages
  cost what the first does), also for a `distinct` query of the table's own columns ordered by its primary key;
  a page without the cookie, a non-consecutive one, another `distinct` query or one joined to many rows per row
  is counted by page number instead.
- Semantics the stand-in chose where Microsoft is silent: `ne` also selects nulls, `not-in` and `not-like` do
  not; dates are UTC; `on`, `on-or-before` and `on-or-after` compare whole days; `last-x-days` is from the
  start of the day X days ago until now and `next-x-days` from now to the end of the day X days ahead.

Anything else (another element, attribute, operator or link type, aggregates, ordering by a linked column)
answers 400 in Dataverse's error shape naming what is not supported, never a wrong answer. An attribute the
table does not have answers as Dataverse does: code 0x80041103 (QueryBuilderNoAttribute), "'contact' entity
doesn't contain attribute with Name = 'x' and NameMapping = 'Logical'." (the text and code as reported in
microsoft/PowerPlatform-DataverseServiceClient issue 299); a table that does not exist 0x80041102
(QueryBuilderNoEntity).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import BAD_REQUEST, DataverseError
from dotdyn_pipeline.sandbox.dataverse.messages import JSON_TYPE, ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import DECIMAL, NUMERIC, normalize_datetime
from dotdyn_pipeline.sandbox.dataverse.query import MAX_PAGE, keyset_after
from dotdyn_pipeline.sandbox.dataverse.schema import Column, Table
from dotdyn_pipeline.sandbox.dataverse.store import Store, q, type_column, value_sql

NO_ATTRIBUTE = "0x80041103"  # QueryBuilderNoAttribute
NO_ENTITY = "0x80041102"  # QueryBuilderNoEntity
#: The XML attributes each element may carry; ones that change nothing here (the layout hints a saved
#: view or Advanced Find writes) are accepted and ignored.
ALLOWED = {
    "fetch": {"version", "output-format", "mapping", "no-lock", "distinct", "count", "page", "paging-cookie", "top",
              "returntotalrecordcount", "aggregate", "latematerialize", "useraworderby"},
    "entity": {"name", "enableprefiltering"},
    "attribute": {"name", "alias"},
    "all-attributes": set(),
    "link-entity": {"name", "from", "to", "link-type", "alias", "visible", "intersect", "enableprefiltering"},
    "filter": {"type", "isquickfindfields"},
    "condition": {"attribute", "operator", "value", "entityname", "uiname", "uitype", "uihidden"},
    "value": {"uiname", "uitype"},
    "order": {"attribute", "descending"},
}
#: Operator -> how many values it takes (None: one or more).
OPERATORS: dict[str, int | None] = {
    "eq": 1, "ne": 1, "lt": 1, "le": 1, "gt": 1, "ge": 1, "like": 1, "not-like": 1, "begins-with": 1,
    "ends-with": 1, "in": None, "not-in": None, "null": 0, "not-null": 0, "on": 1, "on-or-before": 1,
    "on-or-after": 1, "last-x-days": 1, "next-x-days": 1, "between": 2,
}
COMPARISONS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
TEXT_OPERATORS = {"like", "not-like", "begins-with", "ends-with"}
DATE_OPERATORS = {"on", "on-or-before", "on-or-after", "last-x-days", "next-x-days"}
TEXT_TYPES, DATE_TYPES = {"String", "Memo"}, {"DateTime", "DateOnly"}
GUID_TYPES = {"Uniqueidentifier", "Lookup", "Customer"}
LOOKUP_ANNOTATIONS = ("*", "Microsoft.Dynamics.CRM.*", "Microsoft.Dynamics.CRM.lookuplogicalname")
MORE_RECORDS_ANNOTATIONS = ("*", "Microsoft.Dynamics.CRM.*", "Microsoft.Dynamics.CRM.morerecords")
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def not_supported(what: str) -> DataverseError:
    return DataverseError(400, BAD_REQUEST, f"The FetchXML {what} is not supported.")


def invalid(message: str) -> DataverseError:
    return DataverseError(400, BAD_REQUEST, f"Invalid FetchXML: {message}")


@dataclass
class Source:
    """The query's table or one of its link-entities, joined in SQL under `sql_alias`."""

    table: Table
    sql_alias: str
    prefix: str  # how its attributes are named in a row: "" for the query's table, "<alias>." for a link
    selected: list[tuple[str, Column]] = field(default_factory=list)  # (property name, column)

    def column(self, name: str | None, element: str) -> Column:
        column = self.table.by_name.get(name or "")
        if column is None:
            raise DataverseError(400, NO_ATTRIBUTE, f"'{self.table.logical_name}' entity doesn't contain attribute "
                                                    f"with Name = '{name}' and NameMapping = 'Logical'. "
                                                    f"(in <{element}>)")
        return column

    def sql(self, column: Column) -> str:
        return f"{q(self.sql_alias)}.{q(column.name)}"


@dataclass
class Query:
    """A parsed fetch: the SQL pieces and the paging the client asked for."""

    root: Source
    sources: list[Source]
    joins: list[str]
    where: str
    params: list[Any]  # join parameters first, then the WHERE's, in the order they appear in the SQL
    order: list[tuple[Column, bool]]
    count: int
    page: int
    cookie: str | None
    top: int | None
    distinct: bool
    one_row_each: bool  # every link is many-to-one: a row of the query's table appears at most once
    total_count: bool


def _check(element: ElementTree.Element) -> None:
    if element.tag not in ALLOWED:
        raise not_supported(f"element <{element.tag}>")
    unknown = sorted(set(element.attrib) - ALLOWED[element.tag])
    if unknown:
        raise not_supported(f"attribute '{unknown[0]}' of <{element.tag}>")


def _number(element: ElementTree.Element, name: str, low: int, high: int) -> int | None:
    text = element.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise invalid(f"the '{name}' attribute of <fetch> must be a whole number, not '{text}'.") from exc
    if not low <= value <= high:
        raise invalid(f"the '{name}' attribute of <fetch> must be between {low} and {high}.")
    return value


def _true(element: ElementTree.Element, name: str) -> bool:
    value = element.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid(f"the '{name}' attribute of <{element.tag}> must be true or false.")
    return value in ("true", "1")


def parse_xml(text: str, what: str) -> ElementTree.Element:
    """Parse FetchXML or a cookie; document type declarations (the entity expansions XML attacks need) are
    refused before the parser sees them."""
    if "<!" in text:
        raise invalid(f"{what} may not hold declarations (<!DOCTYPE, <!ENTITY), comments or CDATA.")
    try:
        return ElementTree.fromstring(text)  # noqa: S314 - declarations refused above
    except ElementTree.ParseError as exc:
        raise invalid(f"{what} is not well-formed XML ({exc}).") from exc


def _start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _bound(column: Column, moment: dt.datetime) -> str:
    """A moment as `column` stores it (a date-only column keeps the day)."""
    return moment.strftime("%Y-%m-%d" if column.type == "DateOnly" else "%Y-%m-%dT%H:%M:%SZ")


def typed(column: Column, text: str, element: str = "condition") -> Any:
    """A FetchXML value (always text) as `column` stores it; a value of the wrong type is a 400."""
    try:
        if column.type in TEXT_TYPES:
            return text
        if column.type in NUMERIC:
            return int(text)
        if column.type in DECIMAL:
            return float(text)
        if column.type == "Boolean":
            return {"1": 1, "0": 0, "true": 1, "false": 0}[text.strip().lower()]
        if column.type in GUID_TYPES:
            return str(uuid.UUID(text.strip().strip("{}")))
        if column.type == "DateOnly":
            return dt.date.fromisoformat(text.strip()[:10]).isoformat()
        if column.type == "DateTime":
            text = text.strip()
            if len(text) == 10:
                return _bound(column, _start_of_day(dt.date.fromisoformat(text)))
            return normalize_datetime(text)
    except (ValueError, KeyError, DataverseError) as exc:
        raise invalid(f"the value '{text}' of <{element}> on attribute '{column.name}' is not a valid "
                      f"{column.type}.") from exc
    raise not_supported(f"<{element}> on attribute '{column.name}' of type {column.type}")


def _day(column: Column, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise invalid(f"the value '{text}' on attribute '{column.name}' is not a date.") from exc


class Compiler:
    """FetchXML text -> Query; every element and attribute is checked before anything runs."""

    def __init__(self, catalog: Catalog, table: Table, now: dt.datetime) -> None:
        self.catalog, self.table, self.now = catalog, table, now
        self.aliases: dict[str, Source] = {}
        self.sources: list[Source] = []
        self.joins: list[str] = []  # in the order the SQL needs: a link after the one it hangs from
        self.join_params: list[list[Any]] = []  # each join's parameters
        self.one_row_each = True

    def compile(self, text: str) -> Query:
        fetch = parse_xml(text, "the query")
        if fetch.tag != "fetch":
            raise invalid(f"the root element must be <fetch>, not <{fetch.tag}>.")
        _check(fetch)
        if _true(fetch, "aggregate"):
            raise not_supported("aggregate query (aggregate=\"true\")")
        entities = list(fetch)
        if len(entities) != 1 or entities[0].tag != "entity":
            raise invalid("<fetch> must hold exactly one <entity>.")
        entity = entities[0]
        _check(entity)
        name = entity.get("name")
        if self.catalog.get(name or "") is None:
            raise DataverseError(400, NO_ENTITY, f"The entity with a name = '{name}' with namemapping = 'Logical' "
                                                 "was not found in the MetadataCache.")
        if name != self.table.logical_name:
            raise invalid(f"<entity name=\"{name}\"> does not match the entity set '{self.table.entity_set}', "
                          f"whose table is '{self.table.logical_name}'.")
        root = Source(self.table, "t0", "")
        self.sources.append(root)
        order: list[tuple[Column, bool]] = []
        where = self._entity(entity, root, order)
        top = _number(fetch, "top", 1, MAX_PAGE)
        count, page = _number(fetch, "count", 1, MAX_PAGE), _number(fetch, "page", 1, 2**31 - 1)
        if top is not None and (count is not None or page is not None):
            raise invalid("the 'top' attribute cannot be used with the paging attributes 'count' and 'page'.")
        params = [value for values in self.join_params for value in values]
        return Query(root, self.sources, self.joins, where[0], [*params, *where[1]], order,
                     count or MAX_PAGE, page or 1, fetch.get("paging-cookie"), top, _true(fetch, "distinct"),
                     self.one_row_each, _true(fetch, "returntotalrecordcount"))

    # -- entity and link-entity ----------------------------------------------------------------------------
    def _entity(self, element: ElementTree.Element, source: Source,
                order: list[tuple[Column, bool]] | None) -> tuple[str, list[Any]]:
        """Attributes, orders and links of `element`; returns its filters' SQL and parameters."""
        conditions, params = [], []
        all_attributes = False
        named = False
        for child in element:  # links first: a condition may name a link's alias before the link appears
            _check(child)
            if child.tag == "link-entity":
                self._link(child, source)
        for child in element:
            if child.tag == "attribute":
                named = True
                column = source.column(child.get("name"), "attribute")
                source.selected.append((self._property(source, column, child.get("alias")), column))
            elif child.tag == "all-attributes":
                all_attributes = True
            elif child.tag == "filter":
                sql, values = self._filter(child, source)
                conditions.append(sql)
                params += values
            elif child.tag == "order":
                if order is None:
                    raise not_supported("<order> inside <link-entity> (order by the query's own table)")
                order.append((source.column(child.get("attribute"), "order"), _true(child, "descending")))
            elif child.tag != "link-entity":
                raise not_supported(f"element <{child.tag}> inside <{element.tag}>")
        if all_attributes or (not named and source is self.sources[0]):
            every = [(self._property(source, c, None), c) for c in source.table.columns if c.name != "versionnumber"]
            source.selected = every + [chosen for chosen in source.selected if chosen not in every]
        where = " AND ".join(conditions) or "1"
        return where, params

    @staticmethod
    def _property(source: Source, column: Column, alias: str | None) -> str:
        if alias:
            return alias
        return source.prefix + (column.web_name if not source.prefix else column.name)

    def _link(self, element: ElementTree.Element, parent: Source) -> None:
        table = self.catalog.get(element.get("name") or "")
        if table is None:
            raise DataverseError(400, NO_ENTITY, f"The entity with a name = '{element.get('name')}' with "
                                                 "namemapping = 'Logical' was not found in the MetadataCache.")
        kind = element.get("link-type", "inner")
        if kind not in ("inner", "outer"):
            raise not_supported(f"link-type '{kind}' of <link-entity>")
        if element.get("from") is None or element.get("to") is None:
            raise invalid("<link-entity> needs both 'from' and 'to'.")
        alias = element.get("alias") or f"{table.logical_name}{len(self.sources)}"
        if alias in self.aliases:
            raise invalid(f"the alias '{alias}' of <link-entity> is used twice.")
        source = Source(table, f"t{len(self.sources)}", alias + ".")
        self.aliases[alias] = source
        self.sources.append(source)
        linked, own = source.column(element.get("from"), "link-entity"), parent.column(element.get("to"),
                                                                                         "link-entity")
        if linked.name != table.primary_key:
            self.one_row_each = False
        slot = len(self.joins)
        self.joins.append("")
        self.join_params.append([])
        condition, self.join_params[slot] = self._entity(element, source, None)
        join = "LEFT JOIN" if kind == "outer" else "JOIN"
        self.joins[slot] = (f"{join} {q(table.logical_name)} AS {q(source.sql_alias)} ON {source.sql(linked)} = "
                            f"{parent.sql(own)} AND {condition}")

    # -- filters -------------------------------------------------------------------------------------------
    def _filter(self, element: ElementTree.Element, source: Source) -> tuple[str, list[Any]]:
        kind = element.get("type", "and")
        if kind not in ("and", "or"):
            raise not_supported(f"filter type '{kind}'")
        parts, params = [], []
        for child in element:
            _check(child)
            if child.tag == "condition":
                sql, values = self._condition(child, source)
            elif child.tag == "filter":
                sql, values = self._filter(child, source)
            else:
                raise not_supported(f"element <{child.tag}> inside <filter>")
            parts.append(sql)
            params += values
        if not parts:
            return "1", []
        return "(" + f" {kind.upper()} ".join(parts) + ")", params

    def _condition(self, element: ElementTree.Element, source: Source) -> tuple[str, list[Any]]:
        if element.get("entityname") is not None:
            if element.get("entityname") not in self.aliases:
                raise invalid(f"the entityname '{element.get('entityname')}' of <condition> names no link-entity.")
            source = self.aliases[element.get("entityname")]
        column = source.column(element.get("attribute"), "condition")
        operator = element.get("operator", "")
        if operator not in OPERATORS:
            raise not_supported(f"condition operator '{operator}'")
        texts = [element.get("value")] if element.get("value") is not None else []
        for child in element:
            _check(child)
            if child.tag != "value":
                raise not_supported(f"element <{child.tag}> inside <condition>")
            texts.append(child.text or "")
        wanted = OPERATORS[operator]
        if (wanted is None and not texts) or (wanted is not None and len(texts) != wanted):
            raise invalid(f"the operator '{operator}' takes {'one or more' if wanted is None else wanted} "
                          f"value(s); <condition attribute=\"{column.name}\"> has {len(texts)}.")
        if operator in TEXT_OPERATORS and column.type not in TEXT_TYPES:
            raise invalid(f"the operator '{operator}' needs a text attribute; '{column.name}' is {column.type}.")
        if operator in DATE_OPERATORS and column.type not in DATE_TYPES:
            raise invalid(f"the operator '{operator}' needs a date attribute; '{column.name}' is {column.type}.")
        return self._operator(operator, column, source.sql(column), texts)

    def _operator(self, operator: str, column: Column, sql: str, texts: list[str]) -> tuple[str, list[Any]]:
        if operator == "null":
            return f"{sql} IS NULL", []
        if operator == "not-null":
            return f"{sql} IS NOT NULL", []
        if operator in COMPARISONS:
            return f"{sql} {COMPARISONS[operator]} ?", [typed(column, texts[0])]
        if operator == "ne":
            return f"({sql} <> ? OR {sql} IS NULL)", [typed(column, texts[0])]
        if operator in ("like", "not-like"):
            return f"{sql} {'NOT ' if operator == 'not-like' else ''}LIKE ?", [texts[0]]
        if operator in ("begins-with", "ends-with"):
            escaped = texts[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"{sql} LIKE ? ESCAPE '\\'", [escaped + "%" if operator == "begins-with" else "%" + escaped]
        if operator in ("in", "not-in"):
            values = [typed(column, text) for text in texts]
            return f"{sql} {'NOT ' if operator == 'not-in' else ''}IN ({','.join('?' * len(values))})", values
        if operator == "between":
            low, high = typed(column, texts[0]), typed(column, texts[1])
            if column.type == "DateTime" and len(texts[1].strip()) == 10:  # a whole day: until its end
                return f"({sql} >= ? AND {sql} < ?)", [low, _bound(column, _start_of_day(
                    _day(column, texts[1]) + dt.timedelta(days=1)))]
            return f"({sql} >= ? AND {sql} <= ?)", [low, high]
        return self._dates(operator, column, sql, texts[0])

    def _dates(self, operator: str, column: Column, sql: str, text: str) -> tuple[str, list[Any]]:
        if operator in ("last-x-days", "next-x-days"):
            try:
                days = int(text)
            except ValueError as exc:
                raise invalid(f"the operator '{operator}' needs a whole number of days, not '{text}'.") from exc
            today = self.now.date()
            if operator == "last-x-days":
                return f"({sql} >= ? AND {sql} <= ?)", [
                    _bound(column, _start_of_day(today - dt.timedelta(days=days))), _bound(column, self.now)]
            return f"({sql} >= ? AND {sql} < ?)", [
                _bound(column, self.now if column.type == "DateTime" else _start_of_day(today)),
                _bound(column, _start_of_day(today + dt.timedelta(days=days + 1)))]
        day = _day(column, text)
        start, end = (_bound(column, _start_of_day(d)) for d in (day, day + dt.timedelta(days=1)))
        if operator == "on":
            return f"({sql} >= ? AND {sql} < ?)", [start, end]
        if operator == "on-or-after":
            return f"{sql} >= ?", [start]
        return f"{sql} < ?", [end]


def _encode_twice(text: str) -> str:
    """URL-encoding as Dataverse writes the inner cookie: every reserved character, lower-case hex."""
    once = _HEX_ESCAPE.sub(lambda m: m.group().lower(), quote(text, safe=""))
    return _HEX_ESCAPE.sub(lambda m: m.group().lower(), quote(once, safe=""))


def _cookie_value(column: Column, value: Any) -> str:
    if column.type in GUID_TYPES:
        return "{" + str(value).upper() + "}"
    return str(value)


class FetchXmlReader:
    """Answers `GET /<entityset>?fetchXml=...`."""

    def __init__(self, store: Store, catalog: Catalog, api_url: str) -> None:
        self.store, self.catalog, self.api_url = store, catalog, api_url

    def read(self, table: Table, request: ApiRequest) -> ApiResponse:
        others = sorted(name for name in request.query if name != "fetchXml")
        if others:
            raise invalid(f"the query parameter '{others[0]}' cannot be combined with fetchXml.")
        query = Compiler(self.catalog, table, dt.datetime.now(dt.UTC).replace(microsecond=0)).compile(
            request.query["fetchXml"])
        annotations = request.prefer.get("odata.include-annotations", "")
        asked = [part.strip() for part in annotations.strip('"').split(",")] if annotations else []
        lookup_names = any(part in LOOKUP_ANNOTATIONS for part in asked)
        rows, more, cookie = self._page(query, lookup_names)
        root = query.root
        head: dict[str, Any] = {"@odata.context": f"{self.api_url}/$metadata#{table.entity_set}("
                                                  + ",".join(name for name, _ in root.selected) + ")"}
        if query.total_count:
            total = self._total(query)
            head["@Microsoft.Dynamics.CRM.totalrecordcount"] = min(total, MAX_PAGE)
            head["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > MAX_PAGE
        if more:
            head["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"] = (
                f'<cookie pagenumber="{query.page + 1}" pagingcookie="{_encode_twice(cookie)}" istracking="False" />')
            if any(part in MORE_RECORDS_ANNOTATIONS for part in asked):
                head["@Microsoft.Dynamics.CRM.morerecords"] = True
        body = json.dumps(head, ensure_ascii=False)[:-1] + ',"value":[' + ",".join(rows) + "]}"
        headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
        if annotations:
            headers["Preference-Applied"] = f"odata.include-annotations={annotations}"
        return ApiResponse(200, body.encode(), headers)

    # -- SQL -------------------------------------------------------------------------------------------------
    def _row_json(self, query: Query, lookup_names: bool) -> str:
        parts: list[str] = []
        root = query.root
        if root.table.system and not query.distinct:
            parts += ["'@odata.etag'", f"'W/\"' || {q(root.sql_alias)}.\"_version\" || '\"'"]
        chosen = list(root.selected)
        if not query.distinct and all(c.name != root.table.primary_key for _, c in chosen):
            chosen.insert(0, (root.table.primary_key, root.table.by_name[root.table.primary_key]))
        for source in query.sources:
            for name, column in (chosen if source is root else source.selected):
                parts += ["'" + name.replace("'", "''") + "'", value_sql(column, source.sql_alias)]
                if lookup_names and column.is_lookup:
                    hidden = type_column(column)
                    target = f"{q(source.sql_alias)}.{q(hidden)}" if hidden else f"'{column.targets[0]}'"
                    parts += [f"'{name}@Microsoft.Dynamics.CRM.lookuplogicalname'",
                              f"CASE WHEN {source.sql(column)} IS NULL THEN NULL ELSE {target} END"]
        return f"json_patch('{{}}', json_object({', '.join(parts)}))"  # json_patch drops the null members

    def _from(self, query: Query) -> str:
        return " ".join([f"{q(query.root.table.logical_name)} AS {q(query.root.sql_alias)}", *query.joins])

    def _keyset(self, query: Query) -> bool:
        """Whether pages continue after the cookie's last row: when each row of the result is one row of the
        query's table, either by its links (many-to-one) or by `distinct` over its own columns with its primary
        key among the orders (the key then tells the distinct rows apart)."""
        if not query.distinct:
            return query.one_row_each
        primary = query.root.table.by_name[query.root.table.primary_key]
        return (not any(source.selected for source in query.sources[1:])
                and any(column == primary for column, _ in query.order))

    def _order(self, query: Query) -> list[tuple[Column, bool]]:
        order = list(query.order)
        primary = query.root.table.by_name[query.root.table.primary_key]
        if not query.distinct and all(column != primary for column, _ in order):
            order.append((primary, False))
        return order

    def _page(self, query: Query, lookup_names: bool) -> tuple[list[str], bool, str]:
        root, order = query.root, self._order(query)
        row_json = self._row_json(query, lookup_names)
        where, params = query.where, list(query.params)
        limit = query.top or query.count
        offset = 0 if query.top else (query.page - 1) * query.count
        after = self._cookie_position(query, order) if self._keyset(query) else None
        if after is not None:
            condition, extra = keyset_after([(root.sql(c), d) for c, d in order], after, column_sql=str)
            where, params, offset = f"({where}) AND {condition}", [*params, *extra], 0
        terms = [f"{root.sql(c)} {'DESC' if d else 'ASC'}" for c, d in order]
        if not self._keyset(query):  # counted by page number: ties need a fixed order too
            terms += ["1"] if query.distinct else [f"{q(s.sql_alias)}.\"_rowid\"" for s in query.sources[1:]]
        sql_order = ", ".join(terms)
        columns = ", ".join([row_json, *(root.sql(c) for c, _ in order)])
        sql = (f"SELECT {'DISTINCT ' if query.distinct else ''}{columns} FROM {self._from(query)} WHERE {where} "
               f"ORDER BY {sql_order} LIMIT ? OFFSET ?")
        found = self.store.db.execute(sql, [*params, limit + 1, offset]).fetchall()
        more = len(found) > limit and query.top is None
        found = found[:limit]
        return [row[0] for row in found], more, self._cookie(query, order, found)

    def _total(self, query: Query) -> int:
        if query.distinct:
            sql = (f"SELECT COUNT(*) FROM (SELECT DISTINCT {self._row_json(query, False)} FROM {self._from(query)} "
                   f"WHERE {query.where})")
        else:
            sql = f"SELECT COUNT(*) FROM {self._from(query)} WHERE {query.where}"
        return self.store.db.execute(sql, query.params).fetchone()[0]

    # -- the paging cookie -------------------------------------------------------------------------------
    @staticmethod
    def _cookie(query: Query, order: list[tuple[Column, bool]], found: list[tuple]) -> str:
        cookie = ElementTree.Element("cookie", page=str(query.page))
        for position, (column, _) in enumerate(order):
            element = ElementTree.SubElement(cookie, column.name)
            for name, row in (("last", found[-1] if found else None), ("first", found[0] if found else None)):
                if row is not None and row[1 + position] is not None:
                    element.set(name, _cookie_value(column, row[1 + position]))
        return ElementTree.tostring(cookie, encoding="unicode")

    @staticmethod
    def _cookie_position(query: Query, order: list[tuple[Column, bool]]) -> list[Any] | None:
        """The order values of the last row of the previous page, when the cookie is that page's."""
        if not query.cookie or query.page <= 1:
            return None
        cookie = parse_xml(query.cookie, "the 'paging-cookie' attribute of <fetch>")
        if cookie.tag != "cookie" or cookie.get("page") != str(query.page - 1):
            return None  # Microsoft: a cookie for a non-consecutive page is ignored
        last = {element.tag: element.get("last") for element in cookie}
        if any(column.name not in last for column, _ in order):
            raise invalid("the 'paging-cookie' of <fetch> does not hold the query's order attributes.")
        return [None if last[column.name] is None else typed(column, last[column.name], "paging-cookie")
                for column, _ in order]

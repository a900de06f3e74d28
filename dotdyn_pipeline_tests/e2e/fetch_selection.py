"""The records a dynamic list's FetchXML selects, computed by the tests from the rows themselves.

Written apart from the pipeline and from the stand-in, after Microsoft's descriptions of the operators
("Filter rows using FetchXml", condition operators), for the shapes marketing lists use: nested and/or filters,
conditions on the entity or on an inner or outer link-entity to one record (a parent), compared without regard
to case as Dataverse's collation does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

Row = dict[str, Any]
#: entity set of each table a list's query may name or link to
ENTITY_SETS = {"contact": "contacts", "lead": "leads", "account": "accounts"}


def _value(row: Row | None, attribute: str) -> Any:
    if row is None:
        return None
    return row.get(attribute, row.get(f"_{attribute}_value"))


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip().strip("{}").lower()
        try:
            return float(text)
        except ValueError:
            return text
    return value


def _date(value: Any) -> dt.date | None:
    return None if value in (None, "") else dt.date.fromisoformat(str(value)[:10])


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.lower()),
                      re.DOTALL)


def _condition(element: ElementTree.Element) -> Callable[[Any], bool]:
    """A test of one attribute's value for a <condition>."""
    operator = element.get("operator")
    given = element.get("value")
    values = [v.text for v in element.findall("value")] or ([given] if given is not None else [])
    wanted = [_comparable(v) for v in values]
    today = dt.datetime.now(dt.UTC).date()

    def compare(test: Callable[[Any, Any], bool]) -> Callable[[Any], bool]:
        return lambda value: value is not None and test(_comparable(value), wanted[0])

    text = {"like": lambda v: bool(_like(values[0]).fullmatch(str(v).lower())),
            "begins-with": lambda v: str(v).lower().startswith(values[0].lower()),
            "ends-with": lambda v: str(v).lower().endswith(values[0].lower())}
    days = {"last-x-days": lambda d: today - dt.timedelta(days=int(values[0])) <= d <= today,
            "next-x-days": lambda d: today <= d <= today + dt.timedelta(days=int(values[0])),
            "on": lambda d: d == _date(values[0]), "on-or-before": lambda d: d <= _date(values[0]),
            "on-or-after": lambda d: d >= _date(values[0])}
    if operator in text:
        return lambda value: value is not None and text[operator](value)
    if operator in ("not-like",):
        return lambda value: value is not None and not _like(values[0]).fullmatch(str(value).lower())
    if operator in days:
        return lambda value: value is not None and days[operator](_date(value))
    tests: dict[str, Callable[[Any], bool]] = {
        "eq": compare(lambda a, b: a == b), "ne": compare(lambda a, b: a != b),
        "lt": compare(lambda a, b: a < b), "le": compare(lambda a, b: a <= b),
        "gt": compare(lambda a, b: a > b), "ge": compare(lambda a, b: a >= b),
        "in": lambda value: value is not None and _comparable(value) in wanted,
        "not-in": lambda value: value is not None and _comparable(value) not in wanted,
        "null": lambda value: value in (None, ""), "not-null": lambda value: value not in (None, ""),
        "between": lambda value: value is not None and wanted[0] <= _comparable(value) <= wanted[1],
    }
    if operator not in tests:
        raise NotImplementedError(f"the test does not evaluate operator {operator!r}")
    return tests[operator]


def _filter(element: ElementTree.Element, alias: str | None) -> Callable[[dict[str | None, Row | None]], bool]:
    """A test of a joined row (alias -> row; None: the query's entity) for a <filter>."""
    parts = []
    for child in element:
        if child.tag == "filter":
            parts.append(_filter(child, alias))
        elif child.tag == "condition":
            test, name = _condition(child), child.get("entityname", alias)
            attribute = child.get("attribute")
            parts.append(lambda joined, test=test, name=name, attribute=attribute:
                         test(_value(joined.get(name), attribute)))
    combine = any if element.get("type") == "or" else all
    return lambda joined: combine(part(joined) for part in parts)


def select(query: str, tables: dict[str, list[Row]]) -> set[str]:
    """Ids of the records of the query's entity that it selects; `tables`: rows by logical name."""
    entity = ElementTree.fromstring(query).find("entity")  # noqa: S314 - the test's own seeded queries
    name = entity.get("name")
    links = []  # (alias, table, from, to, outer, filters)
    for number, link in enumerate(entity.findall("link-entity")):
        alias = link.get("alias") or f"link{number}"
        links.append((alias, {_comparable(_value(row, link.get("from"))): row for row in tables[link.get("name")]},
                      link.get("to"), link.get("link-type") == "outer",
                      [_filter(f, alias) for f in link.findall("filter")]))
    filters = [_filter(f, None) for f in entity.findall("filter")]
    chosen = set()
    for row in tables[name]:
        joined: dict[str | None, Row | None] = {None: row}
        kept = True
        for alias, by_key, to, outer, own in links:
            other = by_key.get(_comparable(_value(row, to)))
            if other is not None and not all(test({alias: other}) for test in own):
                other = None
            if other is None and not outer:
                kept = False
                break
            joined[alias] = other
        if kept and all(test(joined) for test in filters):
            chosen.add(row[f"{name}id"])
    return chosen

"""OData v4 text for the Dataverse Web API: literals, key segments, query strings, delta links.

Rules from Microsoft's Web API documents: strings are single-quoted with `'` doubled, GUIDs, numbers,
booleans and date-times are bare; alternate keys are `(col='v',col2=2)`; values in the query string are
percent-encoded (`+` must become `%2B`); `@odata.nextLink` and `@odata.deltaLink` are opaque.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

#: Characters left as they are in query values; everything else (spaces, `+`, `&`, `#` ...) is encoded.
_QUERY_SAFE = ",'()*:@/$"


def literal(value: Any) -> str:
    """`value` as an OData literal for `$filter` and key segments."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def json_value(value: Any) -> Any:
    """`value` as a JSON payload carries it: dates and times in the same form as in a key segment."""
    return literal(value) if isinstance(value, date) else value


def is_guid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def key_segment(key: str | uuid.UUID | Mapping[str, Any]) -> str:
    """The parenthesised key of one record: `(guid)` for a primary key, `(a='x',b=2)` for an alternate key."""
    if isinstance(key, Mapping):
        return "(" + ",".join(f"{column}={_key_literal(column, value)}" for column, value in key.items()) + ")"
    if not is_guid(key):
        raise ValueError(f"a primary key must be a GUID, got {key!r}")
    return f"({key})"


def _key_literal(column: str, value: Any) -> str:
    # A lookup in a key (`_parentcustomerid_value=<guid>`) is a GUID, bare, even when given as a string.
    if column.startswith("_") and column.endswith("_value") and is_guid(value):
        return str(uuid.UUID(str(value)))
    return literal(value)


def query(select: Iterable[str] | None = None, filter: str | None = None,
          orderby: Sequence[str] | str | None = None, **extra: str) -> str:
    """A query string (`$select=a,b&$filter=...`); `extra` adds further `$name=value` options."""
    options: list[tuple[str, str]] = []
    if select:
        options.append(("$select", ",".join(select)))
    if filter:
        options.append(("$filter", filter))
    if orderby:
        options.append(("$orderby", orderby if isinstance(orderby, str) else ",".join(orderby)))
    options += [(f"${name}", value) for name, value in extra.items()]
    return "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in options)


def prefer(*, max_page_size: int | None = None, track_changes: bool = False,
           continue_on_error: bool = False, annotations: Sequence[str] = ()) -> str:
    """One `Prefer` header value joining the preferences asked for (`annotations`: the instance annotations to
    include, by name)."""
    parts = []
    if track_changes:
        parts.append("odata.track-changes")
    if max_page_size:
        parts.append(f"odata.maxpagesize={max_page_size}")
    if continue_on_error:
        parts.append("odata.continue-on-error")
    if annotations:
        parts.append(f'odata.include-annotations="{",".join(annotations)}"')
    return ",".join(parts)


def link_option(link: str, name: str) -> str | None:
    """The decoded value of query option `name` (e.g. `$select`, `$deltatoken`) in a next or delta link."""
    values = parse_qs(urlsplit(link).query, keep_blank_values=True).get(name)
    return values[0] if values else None


def is_deleted(row: Mapping[str, Any]) -> bool:
    """True for a change-tracking deletion: `{"@odata.context": ".../$deletedEntity", "id": ...}`."""
    return "$deletedEntity" in row.get("@odata.context", "")

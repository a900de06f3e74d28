"""Dates the way the API takes and gives them: UTC, ISO 8601.

Path parameters (`.../since-date/{date}`) are sent as `YYYY-MM-DDTHH:MM:SS` in UTC, a form every documented
client uses; responses come as ISO strings with `Z`, an offset, a space instead of `T`, or none (SOAP gives
datetimes). Naive values are taken as UTC, which is what the API means by them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_date(value: datetime | date) -> str:
    """The path form of a since-date: `2024-01-31T09:05:00` (UTC, whole seconds)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S")


def parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from an API value, or None for null, empty or the .NET minimum date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.year <= 1:  # DateTime.MinValue: .NET's way of saying "never"
        return None
    return to_utc(parsed)


def csv_value(value: object) -> str:
    """A data-field value as an import CSV cell: ISO dates with 4-digit years, True/False, '' for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime):
        return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)

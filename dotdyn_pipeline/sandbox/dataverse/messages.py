"""A Web API request and response as plain data, so that `$batch` parts run through the same handler."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request

JSON_TYPE = "application/json; odata.metadata=minimal"


@dataclass
class ApiRequest:
    method: str
    path: str  # below /api/data/<version>/, percent-decoded
    query: dict[str, str]  # percent-decoded
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def prefer(self) -> dict[str, str]:
        """The `Prefer` preferences, e.g. {"odata.maxpagesize": "500", "odata.track-changes": ""}."""
        return parse_prefer(self.headers.get("prefer", ""))

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}.") from exc


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(status, json.dumps(value, ensure_ascii=False).encode(), {"Content-Type": JSON_TYPE,
                                                                             **(headers or {})})

    @classmethod
    def error(cls, error: DataverseError) -> ApiResponse:
        return cls.json(error.body(), error.status, error.headers)


def parse_prefer(header: str) -> dict[str, str]:
    """Split a (possibly comma-joined) Prefer header, respecting quoted values."""
    preferences: dict[str, str] = {}
    part, quoted = "", False
    for char in header + ",":
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            name, _, value = part.strip().partition("=")
            if name:
                preferences[name.strip().lower()] = value.strip()
            part = ""
        else:
            part += char
    return preferences

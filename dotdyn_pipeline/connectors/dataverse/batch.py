"""`$batch` bodies: encode requests (optionally grouped in atomic change sets) and decode the responses.

Format from Microsoft's "Execute batch operations using the Web API": a `multipart/mixed` body whose parts
are `application/http` messages, CRLF line endings, at most 1000 requests, change sets as nested
`multipart/mixed` parts whose requests carry a `Content-ID`. Responses come back in request order, change
set responses nested the same way.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The service's cap on requests in one `$batch`.
MAX_BATCH_REQUESTS = 1000
CRLF = "\r\n"


@dataclass(frozen=True)
class BatchRequest:
    """One request inside a batch; `url` is relative to the Web API root (e.g. `contacts(<id>)`)."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    """One response out of a batch."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    content_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


Part = BatchRequest | Sequence[BatchRequest]  # a sequence is one change set


def count_requests(parts: Sequence[Part]) -> int:
    return sum(1 if isinstance(part, BatchRequest) else len(part) for part in parts)


def encode_batch(parts: Sequence[Part], api_path: str, boundary: str | None = None) -> tuple[str, bytes]:
    """(Content-Type, body) of a `$batch` request; `api_path` is the Web API root path, `/api/data/v9.2/`."""
    total = count_requests(parts)
    if not 0 < total <= MAX_BATCH_REQUESTS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_REQUESTS} requests, got {total}")
    boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    content_id = 0
    for part in parts:
        lines.append(f"--{boundary}")
        if isinstance(part, BatchRequest):
            lines += _http_part(part, api_path, None)
            continue
        changeset = f"changeset_{uuid.uuid4()}"
        lines += [f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        for request in part:
            content_id += 1
            lines += [f"--{changeset}", *_http_part(request, api_path, content_id)]
        lines.append(f"--{changeset}--")
    lines += [f"--{boundary}--", ""]
    return f"multipart/mixed; boundary={boundary}", CRLF.join(lines).encode()


def _http_part(request: BatchRequest, api_path: str, content_id: int | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{request.method} {api_path}{request.url} HTTP/1.1"]
    headers = dict(request.headers)
    if request.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if request.body is None:
        return [*lines, "", ""]
    return [*lines, "", json.dumps(request.body, ensure_ascii=False, separators=(",", ":"))]


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError(f"no multipart boundary in {content_type!r}")
    return match.group(1)


def decode_batch(content_type: str, body: bytes) -> list[BatchResponse]:
    """The responses of a `$batch` answer, in request order, change sets flattened."""
    responses: list[BatchResponse] = []
    for headers, content in _parts(body, boundary_of(content_type)):
        inner_type = headers.get("content-type", "")
        if inner_type.startswith("multipart/mixed"):
            responses += decode_batch(inner_type, content)
        else:
            responses.append(_http_response(content, headers.get("content-id")))
    return responses


def _parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    delimiter = re.compile(rb"(?:\r?\n)?--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?:\r?\n|$)")
    pieces = delimiter.split(body)
    # split() yields: preamble, then (closing-marker, part) pairs; stop at the closing delimiter.
    parts = []
    for index in range(1, len(pieces) - 1, 2):
        if pieces[index]:  # the `--boundary--` closing delimiter
            break
        parts.append(_split_headers(pieces[index + 1]))
    return parts


def _split_headers(message: bytes) -> tuple[dict[str, str], bytes]:
    match = re.search(rb"\r?\n\r?\n", message)
    head, content = (message[:match.start()], message[match.end():]) if match else (message, b"")
    headers = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, content


def _http_response(message: bytes, content_id: str | None) -> BatchResponse:
    status_line, _, rest = message.lstrip().partition(b"\n")
    fields = status_line.decode("latin-1").split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response in a batch part: {status_line[:80]!r}")
    headers, content = ({}, rest) if rest.startswith((b"\r\n", b"\n")) else _split_headers(rest)
    return BatchResponse(status=int(fields[1]), headers=headers, body=content.strip(),
                         content_id=content_id or headers.get("content-id"))

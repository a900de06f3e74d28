"""`POST /$batch`: multipart/mixed requests, atomic change sets, Content-ID references, at most 1000 requests.

Without `Prefer: odata.continue-on-error` processing stops at the first failure and the batch answers 400
with the responses so far (the failing one last); with it every request runs and the batch answers 200. A
change set runs in one transaction: if any of its requests fails, all of them are rolled back and the
change set answers with that one failure.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, bad_request
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.store import Store

MAX_REQUESTS = 1000
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass
class Part:
    request: ApiRequest
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


class _Failed(Exception):
    """Rolls a change set back, carrying the failing response."""

    def __init__(self, response: ApiResponse) -> None:
        self.response = response


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not match or not content_type.lower().startswith("multipart/mixed"):
        raise bad_request("The batch request must have Content-Type multipart/mixed with a boundary.")
    return match.group(1)


def _split(body: bytes, boundary: str) -> list[bytes]:
    text = body.replace(b"\r\n", b"\n")
    marker = b"--" + boundary.encode()
    if marker + b"--" not in text:
        raise bad_request("The batch body is not terminated by its closing boundary.")
    sections = text.split(marker + b"--", 1)[0].split(marker)
    return [s.strip(b"\n") for s in sections[1:]]


def _headers_and_body(section: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = section.partition(b"\n\n")
    headers = {}
    for line in head.decode("utf-8").split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, body


def _request(section: bytes, api_path: str) -> Part:
    headers, http = _headers_and_body(section)
    request_line, _, rest = http.partition(b"\n")
    inner_headers, body = _headers_and_body(rest) if rest.strip() else ({}, b"")
    line = request_line.decode("utf-8").strip()
    method, _, target = line.partition(" ")
    target = target.rsplit(" HTTP/", 1)[0]
    if not method or not target:
        raise bad_request(f"The batch part has no request line: '{line[:100]}'.")
    url = urlsplit(target.replace(" ", "%20"))
    path = unquote(url.path)
    path = path.split(api_path, 1)[1] if api_path in path else path.lstrip("/")
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return Part(ApiRequest(method.upper(), path, query, inner_headers, body.rstrip(b"\n")),
                headers.get("content-id"))


def parse(content_type: str, body: bytes, api_path: str) -> list[Part | ChangeSet]:
    """The batch's requests and change sets, in order (`api_path`: the Web API's, `/api/data/<version>/`)."""
    items: list[Part | ChangeSet] = []
    for section in _split(body, _boundary(content_type)):
        headers, content = _headers_and_body(section)
        if headers.get("content-type", "").lower().startswith("multipart/mixed"):
            change_set = ChangeSet([_request(s, api_path)
                                    for s in _split(content, _boundary(headers["content-type"]))])
            if any(p.request.method == "GET" for p in change_set.parts):
                raise bad_request("A change set cannot contain GET requests.")
            items.append(change_set)
        else:
            items.append(_request(section, api_path))
    return items


def _render(response: ApiResponse, content_id: str | None = None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n" + response.body.decode("utf-8")


class BatchRunner:
    """Runs a parsed batch through the Web API handler."""

    def __init__(self, store: Store, handle: Callable[[ApiRequest], ApiResponse], api_path: str) -> None:
        self.store, self.handle, self.api_path = store, handle, api_path

    def run(self, request: ApiRequest) -> ApiResponse:
        items = parse(request.headers.get("content-type", ""), request.body, self.api_path)
        total = sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)
        if total > MAX_REQUESTS:
            raise DataverseError(400, "0x80060888", "The current change set contains too many operations. A "
                                 f"maximum number of '{MAX_REQUESTS}' operations are allowed in a change set.")
        keep_going = "odata.continue-on-error" in request.prefer
        prefer = request.headers.get("prefer", "")
        sections, failed = [], False
        for item in items:
            if isinstance(item, ChangeSet):
                text, ok = self._change_set(item, prefer)
            else:
                response = self._one(item.request, prefer, {})
                text, ok = _render(response, item.content_id), response.status < 400
            sections.append(text)
            if not ok:
                failed = True
                if not keep_going:
                    break
        boundary = f"batchresponse_{uuid.uuid4()}"
        body = "".join(f"--{boundary}\r\n{s}\r\n" for s in sections) + f"--{boundary}--\r\n"
        status = 400 if failed and not keep_going else 200
        return ApiResponse(status, body.encode("utf-8"), {"Content-Type": f"multipart/mixed; boundary={boundary}",
                                                          "OData-Version": "4.0"})

    def _one(self, request: ApiRequest, prefer: str, references: dict[str, str]) -> ApiResponse:
        head, _, tail = request.path.partition("/")
        if head in references:
            request.path = references[head].split(self.api_path, 1)[1] + ("/" + tail if tail else "")
        elif head.startswith("$") and head not in ("$batch", "$metadata"):
            return ApiResponse.error(bad_request(
                f"Content-ID Reference: '{head}' does not exist in the batch context."))
        for reference, url in references.items():
            request.body = request.body.replace(json.dumps(reference).encode(), json.dumps(url).encode())
        if prefer and "prefer" not in request.headers:
            request.headers["prefer"] = ",".join(p for p in prefer.split(",") if "continue-on-error" not in p)
        if request.path.strip("/") == "$batch":
            return ApiResponse.error(bad_request("A batch request cannot contain another batch request."))
        return self.handle(request)

    def _change_set(self, change_set: ChangeSet, prefer: str) -> tuple[str, bool]:
        references: dict[str, str] = {}
        rendered = []
        try:
            with self.store.transaction():
                for part in change_set.parts:
                    response = self._one(part.request, prefer, references)
                    if response.status >= 400:
                        raise _Failed(response)
                    if part.content_id and "OData-EntityId" in response.headers:
                        references[f"${part.content_id}"] = response.headers["OData-EntityId"]
                    rendered.append(_render(response, part.content_id))
        except _Failed as failure:
            return _render(failure.response), False
        boundary = f"changesetresponse_{uuid.uuid4()}"
        body = "".join(f"--{boundary}\r\n{r}\r\n" for r in rendered) + f"--{boundary}--"
        return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{body}", True

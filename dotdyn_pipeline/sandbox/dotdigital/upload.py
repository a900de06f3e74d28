"""Receive an import file the two ways the service accepts it, straight to disk (never whole in memory).

- `multipart/form-data` with one file part (the official samples; several files are refused);
- `application/json` `ApiFileMedia` {"fileName", "data": base64} (the swagger's request body).
Uploads over 50 MB are refused, as by the service.
"""

from __future__ import annotations

import base64
import binascii
import json
import mmap
import re
from pathlib import Path

from starlette.requests import Request

from dotdyn_pipeline.sandbox.dotdigital.audience import field
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError

MAX_UPLOAD = 50 * 1024 * 1024
MAX_BODY = MAX_UPLOAD * 4 // 3 + 1024 * 1024  # base64 and multipart framing add to the file's own size
COPY_BLOCK = 8 * 1024 * 1024


async def save_upload(request: Request, destination: Path) -> None:
    """Write the uploaded CSV to `destination`."""
    content_type = request.headers.get("content-type", "")
    spool = destination.with_suffix(".body")
    try:
        size = 0
        with spool.open("wb") as body:
            async for piece in request.stream():
                size += len(piece)
                if size > MAX_BODY:
                    raise ApiError("ERROR_PARAMETER_INVALID", "The upload exceeds the 50 MB limit.", status=413)
                body.write(piece)
        if content_type.startswith("multipart/form-data"):
            boundary = re.search(r'boundary="?([^";]+)"?', content_type)
            if not boundary:
                raise ApiError("ERROR_MALFORMED_REQUEST", "The multipart body has no boundary.")
            _extract_file_part(spool, boundary.group(1).encode(), destination)
        elif "json" in content_type:
            _decode_file_media(spool, destination)
        else:
            raise ApiError("ERROR_CONTENT_TYPE_IS_NOT_SUPPORTED",
                           "Send the file as multipart/form-data or as JSON ApiFileMedia.")
        if destination.stat().st_size > MAX_UPLOAD:
            raise ApiError("ERROR_PARAMETER_INVALID", "The upload exceeds the 50 MB limit.", status=413)
    except ApiError:
        destination.unlink(missing_ok=True)
        raise
    finally:
        spool.unlink(missing_ok=True)


def _extract_file_part(spool: Path, boundary: bytes, destination: Path) -> None:
    delimiter = b"--" + boundary
    if spool.stat().st_size == 0:
        raise ApiError("ERROR_MALFORMED_REQUEST", "The request has no file.")
    with spool.open("rb") as body, mmap.mmap(body.fileno(), 0, access=mmap.ACCESS_READ) as data:
        parts, position = [], data.find(delimiter)
        while position != -1 and data[position + len(delimiter):position + len(delimiter) + 2] != b"--":
            head_end = data.find(b"\r\n\r\n", position)
            end = data.find(b"\r\n" + delimiter, head_end)
            if head_end == -1 or end == -1:
                raise ApiError("ERROR_MALFORMED_REQUEST", "The multipart body is truncated.")
            headers = data[position:head_end].decode("latin-1").lower()
            parts.append(("filename=" in headers, head_end + 4, end))
            position = end + 2
        files = [part for part in parts if part[0]] or parts
        if not files:
            raise ApiError("ERROR_MALFORMED_REQUEST", "The request has no file.")
        if len(files) > 1:
            raise ApiError("ERROR_MULTI_FILE_UPLOAD_NOT_ALLOWED")
        _, start, end = files[0]
        with destination.open("wb") as out:
            for offset in range(start, end, COPY_BLOCK):
                out.write(data[offset:min(offset + COPY_BLOCK, end)])


def _decode_file_media(spool: Path, destination: Path) -> None:
    try:
        media = json.loads(spool.read_bytes())
        destination.write_bytes(base64.b64decode(field(media, "data") or "", validate=True))
    except (ValueError, binascii.Error):
        raise ApiError("ERROR_MALFORMED_REQUEST", "The body is not ApiFileMedia with base64 data.") from None

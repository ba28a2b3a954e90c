"""Streaming multipart upload straight into the content store: the file part is hashed and written
as it arrives (never held in memory or spooled elsewhere first) and the size limit is enforced
while reading, so an oversize upload stops early and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from depot.errors import invalid
from depot.packages.content import ContentWriter

FIELD = "file"
# Room for the multipart framing around the file when checking Content-Length up front.
FRAMING_ALLOWANCE = 64 * 1024

OPENAPI = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD],
    "properties": {FIELD: {"type": "string", "format": "binary", "description": "The installer or archive"}}}}}}}


def _safe_filename(raw: bytes) -> str:
    name = os.path.basename(raw.decode("utf-8", "replace").replace("\\", "/")).strip()
    if name in ("", ".", "..") or len(name) > 255 or any(ord(c) < 32 for c in name):
        raise invalid(["body", FIELD], "the file part needs a plain file name (at most 255 characters)")
    return name


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(413, f"{FIELD}: content is larger than the limit of {max_bytes} bytes")


async def receive_file(request: Request, data_dir: Path, max_bytes: int) -> tuple[str, int, str]:
    """Store the request's multipart part named ``file``; returns (sha256, size, filename)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise invalid(["body"], f"expected a multipart/form-data body with a part named {FIELD!r}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + FRAMING_ALLOWANCE:
        raise _too_large(max_bytes)

    part = {"headers": {}, "field": b"", "value": b"", "is_file": False}
    found: dict = {}
    pending: list[bytes] = []

    def on_part_begin():
        part.update(headers={}, field=b"", value=b"", is_file=False)

    def on_header_field(data, start, end):
        part["field"] += data[start:end]

    def on_header_value(data, start, end):
        part["value"] += data[start:end]

    def on_header_end():
        part["headers"][part["field"].lower()] = part["value"]
        part.update(field=b"", value=b"")

    def on_headers_finished():
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if options.get(b"name") == FIELD.encode() and b"filename" in options:
            if found:
                raise invalid(["body", FIELD], "only one file can be uploaded per request")
            found["filename"] = _safe_filename(options[b"filename"])
            part["is_file"] = True

    def on_part_data(data, start, end):
        if part["is_file"]:
            pending.append(bytes(data[start:end]))

    def on_part_end():
        part["is_file"] = False

    parser = MultipartParser(params[b"boundary"], dict(
        on_part_begin=on_part_begin, on_header_field=on_header_field, on_header_value=on_header_value,
        on_header_end=on_header_end, on_headers_finished=on_headers_finished, on_part_data=on_part_data,
        on_part_end=on_part_end))
    writer = await run_in_threadpool(ContentWriter, data_dir, max_bytes)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except MultipartParseError as e:
                raise invalid(["body"], f"malformed multipart body: {e}") from None
            if pending:
                block = b"".join(pending)
                pending.clear()
                try:
                    await run_in_threadpool(writer.write, block)
                except ValueError:
                    raise _too_large(max_bytes) from None
        parser.finalize()
        if not found:
            raise invalid(["body", FIELD], f"field required: a part named {FIELD!r} with a filename")
        sha256, size = await run_in_threadpool(writer.commit)
        return sha256, size, found["filename"]
    finally:
        writer.discard()

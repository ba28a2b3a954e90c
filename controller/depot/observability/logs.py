"""Log lines as text (a terminal) or JSON (one object per line, for a log collector), each carrying
the id of the HTTP request or of the run it was written for.

- ``request_id`` is set by :class:`RequestIdMiddleware` for the whole handling of a request
  (views, dependencies, exception handlers, the threads sync views run in); the id is the
  client's ``X-Request-ID`` when it is a sane token, else a new one, and is returned in the
  ``X-Request-ID`` response header.
- ``run_id`` is set by the execution code around a run: ``with log_context(run_id=run.id): ...``.

Both are context variables, read by :class:`ContextFilter` when a record is handled, so every
record logged while they are set carries them, whatever logger wrote it.

What a JSON line holds is a fixed list of fields (:data:`JSON_FIELDS`, plus ``request_id``,
``run_id``, ``exception`` and the access log's fields); attributes other libraries attach to their
records (``extra=``) are never copied, so nothing reaches the log that its message did not say.
Request headers, bodies and query strings are never logged: the access line has the method, the
path (percent-encoded, without the query, which may hold a content URL's signature), the status
and the duration.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

request_id_var: ContextVar[str | None] = ContextVar("depot_request_id", default=None)
run_id_var: ContextVar[int | None] = ContextVar("depot_run_id", default=None)

#: An incoming X-Request-ID is kept when it is this: no spaces, quotes or control characters, at
#: most 128 characters (UUIDs, ULIDs, trace ids like "Root=1-5f84c7a5-...;Parent=..." fit).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:;=/+@-]{0,127}")
HEADER = b"x-request-id"
#: Requests logged at DEBUG instead of INFO: probes and scrapes that come every few seconds.
QUIET_PATHS = frozenset({"/metrics", "/api/v1/health"})

access_log = logging.getLogger("depot.access")


@contextmanager
def log_context(*, run_id: int | None = None, request_id: str | None = None) -> Iterator[None]:
    """Within the block, every log record of this thread (or task) carries ``run_id`` /
    ``request_id`` (those given); the previous values come back at its end."""
    tokens = []
    if run_id is not None:
        tokens.append((run_id_var, run_id_var.set(run_id)))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Puts the current ``request_id`` and ``run_id`` on each record (None when unset). Attached to
    handlers, so records of every logger get them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "run_id", None) is None:
            record.run_id = run_id_var.get()
        return True


def _context(record: logging.LogRecord) -> dict:
    return {key: value for key in ("request_id", "run_id")
            if (value := getattr(record, key, None)) is not None}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request_id=... run_id=...]``."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if not context:
            return line
        suffix = " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        first, newline, rest = line.partition("\n")   # after the message, before a traceback
        return first + suffix + newline + rest


#: The record attributes a JSON line has, under these names.
JSON_FIELDS = {"levelname": "level", "name": "logger", "process": "pid", "threadName": "thread"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, pid, thread, and
    when set request_id, run_id, exception (the formatted traceback) and the access log's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")}
        entry.update((name, getattr(record, attr, None)) for attr, name in JSON_FIELDS.items())
        entry["message"] = record.getMessage()
        entry.update(_context(record))
        fields = getattr(record, "depot_fields", None)
        if isinstance(fields, dict):
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(log_format: str = "text", stream=None) -> logging.Handler:
    """A stream handler (stderr unless ``stream``) with the format's formatter and the context filter."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str = "info", log_format: str = "text", stream=None) -> None:
    """The process's logging, as logging.basicConfig does it: a handler on the root logger, unless
    the root logger has handlers already (set up by the embedding program, or by pytest)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(make_handler(log_format, stream))
    root.setLevel(level.upper())


# -- the request id middleware ---------------------------------------------------------------------

def _printable(path: str) -> str:
    """The path with control characters, spaces and non-ASCII percent-encoded (one line, as sent)."""
    return "".join(c if 0x20 < ord(c) < 0x7f else "".join(f"%{b:02X}" for b in c.encode()) for c in path)


def request_id_of(headers) -> str:
    """The client's X-Request-ID if sane, else a new id (32 hex digits)."""
    for name, value in headers:
        if name == HEADER:
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives every HTTP request an id (see :func:`request_id_of`), sets it as ``request_id`` while
    the request is handled, returns it as the ``X-Request-ID`` header and writes one access line
    (``depot.access``) per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = request_id_of(scope.get("headers") or ())
        status = None

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = dict(message, headers=[*headers, (HEADER, request_id.encode())])
            await send(message)

        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            path = _printable(scope.get("path", ""))
            level = logging.DEBUG if scope.get("path") in QUIET_PATHS else logging.INFO
            access_log.log(level, "%s %s %s %.1fms", scope.get("method"), path, status or "-", duration_ms,
                           extra={"depot_fields": {"method": scope.get("method"), "path": path,
                                                   "status": status, "duration_ms": duration_ms}})
            request_id_var.reset(token)

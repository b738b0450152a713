"""What a log line knows of the request it was written in, and the one-JSON-object-per-line format.

The gate (gate.py) puts each request's id, route template and the request itself in
`REQUEST` for the time its handler runs (aiohttp runs every request in a task of its own,
so a log call anywhere below the handler sees it). Nothing is formatted then: the formatter
reads the call, agent or callback id from the request's path only when a line is written,
so a request that logs nothing pays one context-variable set and reset. Ids that come only
in the body (`POST /v1/calls`'s call_id, an answering agent's agent_id) are read from the
struct the handler decoded anyway: `bodies.read_json` leaves it on the request under
`LOGGED_BODY` (one dict store), and the formatter looks at it only when a line is written,
so no body is parsed twice. A path id wins over a body field of the same name.

`JsonFormatter` writes `{"time", "level", "logger", "event", ...}`, plus `request_id`,
`method`, `route`, `call_id` / `agent_id` / `callback_id` where the line was written inside
a request that has them, the fields a caller passed as `extra=` (the access lines' `status`
and `duration_ms`), and `exception` with the traceback only when one was attached (the gate
attaches one to unexpected 500s, never to a client's 4xx).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

import msgspec
from aiohttp import web

# (request id, route template, the request) of the request being handled, if any.
REQUEST: ContextVar[tuple[str, str, web.Request] | None] = ContextVar("tierline_request", default=None)

PATH_IDS = ("call_id", "agent_id", "callback_id")  # path parameters worth a field of their own
BODY_IDS = ("call_id", "agent_id")  # body fields worth one, when the path has none of that name
# The request's decoded body (a msgspec struct), left by bodies.read_json for the formatter.
LOGGED_BODY = web.RequestKey("logged_body", object)
# Every attribute a bare LogRecord has: whatever else a record carries came through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_encode = msgspec.json.Encoder(enc_hook=repr).encode  # an odd `extra=` value is written as its repr


def request_fields() -> dict[str, str]:
    """The fields of the request this code runs in ({} outside one)."""
    current = REQUEST.get()
    if current is None:
        return {}
    request_id, route, request = current
    fields = {"request_id": request_id, "method": request.method, "route": route}
    match = request.match_info
    for name in PATH_IDS:
        value = match.get(name)
        if value is not None:
            fields[name] = value
    body = request.get(LOGGED_BODY)
    if body is not None:
        for name in BODY_IDS:
            given = getattr(body, name, None)
            if isinstance(given, str) and name not in fields:
                fields[name] = given
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(request_fields())
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode(entry).decode()


class TextFormatter(logging.Formatter):
    """The plain format, with the request id appended to lines written inside a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        current = REQUEST.get()
        return line if current is None else f"{line} [request {current[0]}]"


def _utc(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"

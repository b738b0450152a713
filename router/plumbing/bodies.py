"""Bodies in and out: request bodies and query strings into typed structs (or a clear 4xx),
response structs into JSON (path parameters: params.py).

JSON bodies: `application/json` (an empty body counts as `{}`), bounded by `max_body_bytes`,
decoded and validated by msgspec in one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from tierline.router.config import DEFAULTS
from tierline.router.plumbing.endpoints import QueryParam
from tierline.router.plumbing.errors import ApiError, ClientGone
from tierline.router.plumbing.logs import LOGGED_BODY

T = TypeVar("T")

log = logging.getLogger("tierline.router")

BODY_READ_TIMEOUT = web.AppKey("body_read_timeout_s", float)
_DEFAULT_BODY_READ_TIMEOUT = DEFAULTS.server.body_read_timeout_s  # an app that set none

JSON = "application/json"
_decoders: dict[type, msgspec.json.Decoder] = {}  # type: ignore[type-arg]


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode_json(raw: bytes, kind: type[T]) -> T:
    """Decode and validate a body; codes and Tierline's words never depend on msgspec's wording.

    A library message may follow Tierline's own words as detail, in brackets.
    """
    try:
        return _decoder(kind).decode(raw or b"{}")
    except msgspec.ValidationError as exc:
        # Valid JSON of the wrong shape: whether it is an object at all is asked of the body,
        # decoded again without a schema (only refused bodies pay for that).
        try:
            whole = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc})") from None
        if not isinstance(whole, dict):
            raise ApiError(400, "not_an_object", "the body must be a JSON object") from None
        raise ApiError(
            422, "invalid_field", f"a field is missing, unknown, of the wrong type or has an invalid value ({exc})"
        ) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc})") from None


@contextlib.asynccontextmanager
async def receiving(request: web.Request) -> AsyncIterator[None]:
    """Reading (part of) a request body: within the body-read deadline, and aiohttp's payload
    failures turned into Tierline's errors (never a 500 for what a client sent or did)."""
    limit = request.app.get(BODY_READ_TIMEOUT, _DEFAULT_BODY_READ_TIMEOUT)
    try:
        async with asyncio.timeout(limit):
            yield
    except (TimeoutError, RequestPayloadError, ConnectionResetError) as exc:
        raise _read_failure(request, exc, limit) from None


def _read_failure(request: web.Request, exc: Exception, limit: float) -> Exception:
    if isinstance(exc, TimeoutError):
        return ApiError(408, "request_timeout", f"the body did not arrive within {limit:g} s")
    if isinstance(exc, RequestPayloadError):
        return ApiError(400, "invalid_body", "the body could not be read (is its Content-Encoding right?)")
    log.info("%s %s: the client closed the connection before its body arrived", request.method, request.path)
    return ClientGone()


async def read_json(request: web.Request, kind: type[T]) -> T:
    content = request.content
    if content.is_eof() and request.headers.get(hdrs.CONTENT_TYPE) == JSON:
        # The usual case, and the hot path's: a small body, already all here, sent as exactly
        # `application/json`. Taken from the buffer as is: no deadline to set (nothing to wait
        # for), no Content-Type to parse, no copy through a bytearray as `request.read()` makes.
        raw = content.read_nowait()
        if len(raw) > request.client_max_size:
            raise ApiError(413, "payload_too_large", f"the body is larger than {request.client_max_size} bytes")
    else:
        raw = await _read_slowly(request)
    body = decode_json(raw, kind)
    request[LOGGED_BODY] = body  # its call_id / agent_id for the request's log lines (logs.py)
    return body


async def _read_slowly(request: web.Request) -> bytes:
    """A body sent as another content type (refused), or one still arriving (under a deadline)."""
    if request.body_exists and request.content_type != JSON:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        if not request.content.is_eof():
            async with receiving(request):
                return await request.read()
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", f"the body is larger than {request.client_max_size} bytes") from None
    except (RequestPayloadError, ConnectionResetError) as exc:
        raise _read_failure(request, exc, 0.0) from None


def query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in choices:
        raise ApiError(422, "invalid_query", f"{name} must be one of {', '.join(choices)}")
    return value


def query_int(request: web.Request, param: QueryParam, default: int) -> int:
    raw = request.query.get(param.name)
    if raw is None:
        return default
    low, high = param.integer or (-(2**63), 2**63 - 1)
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_query", f"{param.name} must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(422, "invalid_query", f"{param.name} must be between {low} and {high}")
    return value


def query_number(request: web.Request, param: QueryParam) -> float | None:
    """A decimal query parameter within `param.number` (inclusive), or None when absent."""
    raw = request.query.get(param.name)
    if raw is None:
        return None
    low, high = param.number or (-math.inf, math.inf)
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(422, "invalid_query", f"{param.name} must be a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ApiError(422, "invalid_query", f"{param.name} must be a number between {low:g} and {high:g}")
    return value


_encode = msgspec.json.Encoder().encode


# Given as a header rather than `content_type=`: aiohttp then sets it without re-parsing it.
_JSON_HEADERS = {hdrs.CONTENT_TYPE: JSON}


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, headers=_JSON_HEADERS)

"""Bodies in and out: request bodies and query strings into typed structs (or a clear 4xx),
response structs into JSON.

JSON bodies: `application/json` (an empty body counts as `{}`), bounded by `max_body_bytes`,
decoded and validated by msgspec in one pass.
"""

from __future__ import annotations

import math
import re
from typing import TypeVar

import msgspec
from aiohttp import web

from tierline.router.endpoints import QueryParam
from tierline.router.errors import ApiError

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder] = {}  # type: ignore[type-arg]


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode_json(raw: bytes, kind: type[T]) -> T:
    try:
        return _decoder(kind).decode(raw or b"{}")
    except msgspec.ValidationError as exc:
        message = str(exc)
        if message.startswith("Expected `object`") and " - at `" not in message:
            raise ApiError(400, "not_an_object", "the body must be a JSON object") from None
        raise ApiError(422, "invalid_field", message) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


async def read_json(request: web.Request, kind: type[T]) -> T:
    if request.body_exists and request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", f"the body is larger than {request.client_max_size} bytes") from None
    return decode_json(raw, kind)


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


_IDENT = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def path_ident(request: web.Request, name: str) -> str:
    """An id taken from the path, held to the same rule as ids in bodies."""
    value = request.match_info[name]
    if _IDENT.fullmatch(value) is None:
        raise ApiError(422, "invalid_field", f"{name} must be 1-128 characters of A-Za-z0-9._:@-")
    return value


_encode = msgspec.json.Encoder().encode


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")

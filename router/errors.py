"""Every failure leaves as `{"error": {"code", "message"}}` with the fitting status.

One middleware turns engine refusals, body problems and aiohttp's own HTTP errors (unknown
route, wrong method) into that shape, so no handler formats an error itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from tierline.queue.errors import Conflict, EngineError, Invalid, NotFound, Overloaded, Unavailable
from tierline.router.messages import ErrorBody, ErrorDetail
from tierline.tiers.phone import InvalidCaller

log = logging.getLogger("tierline.router")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ENGINE_STATUS: dict[type[EngineError], int] = {
    NotFound: 404, Conflict: 409, Invalid: 422, Unavailable: 503, Overloaded: 503
}

# aiohttp's own refusals, in Tierline's codes and words (its reason phrases are not our contract).
_HTTP_CODES = {
    400: ("bad_request", "the request could not be read"),
    401: ("unauthorized", "this route needs a bearer token"),
    403: ("forbidden", "this token is not allowed here"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed"),
    408: ("request_timeout", "the request was not received in time"),
    413: ("payload_too_large", "the body is too large"),
    415: ("unsupported_media_type", "unsupported content type"),
    422: ("invalid_field", "a field is invalid"),
}


class ApiError(Exception):
    """A request the HTTP layer refuses (bad body, bad query, auth)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ClientGone(Exception):
    """The client closed the connection before its body arrived: nobody is left to answer."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(ErrorBody(ErrorDetail(code, message))),
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except EngineError as exc:
        return error_response(_ENGINE_STATUS.get(type(exc), 409), exc.code, exc.message)
    except InvalidCaller as exc:
        return error_response(422, "invalid_caller", str(exc))
    except ClientGone:
        # Logged in one line where it was noticed; this answer goes nowhere.
        return error_response(400, "client_gone", "the client closed the connection")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", f"the request was refused ({exc.status})"))
        headers = None
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
            headers = {"Allow": allowed}
        elif exc.status == 404:
            message = f"no route {request.method} {request.path}"
        return error_response(exc.status, code, message, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; the request may not have been applied")

"""What every request passes around its handler: errors, auth, admission — one wrapper per route.

Errors: every failure leaves as `{"error": {"code", "message"}}` with the fitting status.
Engine refusals, body problems and aiohttp's own HTTP errors (unknown route, wrong method)
are turned into that shape here, so no handler formats an error itself.

Auth: one bearer token for the IVR/agent API, one for /admin and /metrics. A route's role is
the one its endpoint declares (`Gate.wrap` is given it as the table registers the route); a
request that matches no route (404, 405) meets `no_route`, which has the role of the surface
its path lies in, so an unauthenticated client learns nothing about which admin paths exist.
A role with no token configured is open; the CLI then keeps the service on loopback (see
`cli.serve.check_bind`). Tokens are compared in constant time.

Admission: the call path's limit and request deadline (`/v1`: the IVR and the agents). A
process that is itself overloaded answers `503 overloaded` with `Retry-After` at once, before
any store work, rather than taking the request and timing it out half-done: past
`max_in_flight` requests in progress, a new one is shed. An admitted request gets one deadline
(`request_deadline`) that all its Redis calls share, so a route that re-reads the tier meta,
looks the caller up and runs the engine script still answers within the budget. Shed requests
are counted per process (`Shed`, exported by `/metrics` as `tierline_requests_shed_total`):
shedding is this process's decision, unlike the store's figures, so Prometheus sums it over
the instances it scrapes.

Why a wrapper per route and not aiohttp middlewares: an app with any middleware runs every
request through two more coroutine layers (the middleware and aiohttp's own `current_app`
one), about 5 µs a request, a tenth of the bare-handler ceiling (measured with wrk on
loadtest/ceiling.py with and without a no-op middleware). Wrapping at registration also
settles each route's role and whether it is on the call path once, not per request.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from aiohttp import web

from tierline.queue.errors import Conflict, EngineError, Invalid, NotFound, Overloaded, Unavailable
from tierline.queue.redis_link import request_deadline
from tierline.router.plumbing.endpoints import CALL_PATH, Handler, Role, surface_role
from tierline.router.plumbing.errors import ApiError, ClientGone, error_response
from tierline.tiers.phone import InvalidCaller

log = logging.getLogger("tierline.router")

# --- errors -----------------------------------------------------------------------------------

_ENGINE_STATUS: dict[type[EngineError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unavailable: 503,
    Overloaded: 503,
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


def error_answer(request: web.Request, exc: Exception) -> web.Response:
    """The answer to a request whose handling raised `exc` (an HTTP redirect is re-raised)."""
    if isinstance(exc, ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    if isinstance(exc, EngineError):
        return error_response(_ENGINE_STATUS.get(type(exc), 409), exc.code, exc.message)
    if isinstance(exc, InvalidCaller):
        return error_response(422, "invalid_caller", str(exc))
    if isinstance(exc, ClientGone):
        # Logged in one line where it was noticed; this answer goes nowhere.
        return error_response(400, "client_gone", "the client closed the connection")
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code, message = _HTTP_CODES.get(exc.status, ("http_error", f"the request was refused ({exc.status})"))
        headers = None
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
            headers = {"Allow": allowed}
        elif exc.status == 404:
            message = f"no route {request.method} {request.path}"
        return error_response(exc.status, code, message, headers)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the request may not have been applied")


# --- auth -------------------------------------------------------------------------------------


def authenticate(request: web.Request, role: Role, tokens: Mapping[Role, bytes]) -> None:
    """Raise 401/403 unless the request carries the token of `role` (called only when it has one)."""
    expected = tokens[role]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "unauthorized", "this route needs a bearer token")
    # aiohttp hands undecodable header bytes over as lone surrogates: turn them back into
    # the bytes that were sent, which then simply fail to match (401, never a 500).
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given_bytes, expected):
        other = tokens["admin" if role == "api" else "api"]
        if other and hmac.compare_digest(given_bytes, other):
            raise ApiError(403, "forbidden", f"this token is not allowed on {role} routes")
        raise ApiError(401, "unauthorized", "wrong bearer token")


def open_roles(api_token: str, admin_token: str) -> list[str]:
    return [role for role, token in (("api", api_token), ("admin", admin_token)) if not token]


# --- admission and the wrapper ------------------------------------------------------------------

RETRY_AFTER_S = "1"


class Shed:
    """This process's count of `503 overloaded` answers, by where the request was stopped."""

    def __init__(self) -> None:
        self.at_admission = 0  # refused before any store work: too many requests in flight
        self.at_deadline = 0  # admitted, but this process fell too far behind to finish in time


SHED = web.AppKey("shed", Shed)


class Gate:
    """Wraps each route's handler. `max_in_flight` 0 = no limit. `budget_s`: the deadline of every
    admitted call-path request (None on the memory store, which makes no Redis calls to bound)."""

    def __init__(self, api_token: str, admin_token: str, max_in_flight: int, budget_s: float | None) -> None:
        self.tokens: dict[Role, bytes] = {"api": api_token.encode(), "admin": admin_token.encode(), "public": b""}
        self.max_in_flight = max_in_flight
        self.budget_s = budget_s
        self.shed = Shed()
        self.in_flight = 0  # call-path requests in progress in this process

    def wrap(self, handler: Handler, role: Role | None, path: str) -> Handler:
        """`handler` behind errors, auth (`role`; None: by the surface of the request's path) and,
        for a route under the call path, admission."""
        tokens = self.tokens
        if role is None or not path.startswith(CALL_PATH):

            async def gated(request: web.Request) -> web.StreamResponse:
                try:
                    by = surface_role(request.path) if role is None else role
                    if tokens[by]:
                        authenticate(request, by, tokens)
                    return await handler(request)
                except Exception as exc:
                    return error_answer(request, exc)

            return gated
        return self._admitting(handler, role)

    def _admitting(self, handler: Handler, role: Role) -> Handler:
        gate, expected = self, self.tokens[role]
        limit, budget_s, shed = self.max_in_flight, self.budget_s, self.shed

        async def admitted(request: web.Request) -> web.StreamResponse:
            try:
                if expected:
                    authenticate(request, role, gate.tokens)
                if limit and gate.in_flight >= limit:
                    shed.at_admission += 1
                    return _overloaded(f"{gate.in_flight} requests in progress here (limit {limit}); retry shortly")
                gate.in_flight += 1
                try:
                    if budget_s is None:
                        return await handler(request)
                    with request_deadline(budget_s):
                        return await handler(request)
                except Overloaded as exc:
                    shed.at_deadline += 1
                    return _overloaded(exc.message)
                finally:
                    gate.in_flight -= 1
            except Exception as exc:
                return error_answer(request, exc)

        return admitted


async def no_route(request: web.Request) -> web.StreamResponse:
    """The last route, matching any path: 405 with the methods the path has, else 404 (both in
    Tierline's shape, after the surface's auth, through `Gate.wrap`)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _overloaded(message: str) -> web.Response:
    return error_response(503, Overloaded.code, message, {"Retry-After": RETRY_AFTER_S})

"""What every request passes around its handler: errors, auth, admission — one wrapper per route.

Errors: every failure leaves as `{"error": {"code", "message"}}` with the fitting status.
Engine refusals, body problems and aiohttp's own HTTP errors (unknown route, wrong method)
are turned into that shape here, so no handler formats an error itself.

Auth: one bearer token for the IVR/agent API, one for /admin and /metrics, and one for the back
office, which may only take and close callbacks and read caller records (routes of role
"backoffice", which the IVR/agent token may call too: `endpoints.TOKENS_OF`). A route's role is
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

Figures and ids: the wrapper also counts each answer per route and status class, files its
time in a fixed bucket array per route (`RequestFigures`, plain ints found by `bisect`, turned
into Prometheus text only when /metrics is scraped), counts the store's refusals by code, and
gives the request an id: the client's `X-Request-Id` when it is a sane token, else one made
here (a per-process random prefix and a counter), echoed on every answer, error answers
included, and put on every log line written while the request runs (`logs.REQUEST`). The time
is from the wrapper's start to the handler's answer: aiohttp's parsing and writing are not in
it. One access line per request at debug level (`tierline.access`), so at the default level
the hot path pays only the level check.

Why a wrapper per route and not aiohttp middlewares: an app with any middleware runs every
request through two more coroutine layers (the middleware and aiohttp's own `current_app`
one), about 5 µs a request, a tenth of the bare-handler ceiling (measured with wrk on
loadtest/ceiling.py with and without a no-op middleware). Wrapping at registration also
settles each route's role and whether it is on the call path once, not per request.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from itertools import count
from time import perf_counter

from aiohttp import web

from tierline.queue.errors import Conflict, EngineError, Invalid, NotFound, Overloaded, Unavailable
from tierline.queue.redis_link import request_deadline
from tierline.router.plumbing.endpoints import CALL_PATH, TOKENS_OF, Handler, Role, TokenName, surface_role
from tierline.router.plumbing.errors import ApiError, ClientGone, error_response
from tierline.router.plumbing.logs import REQUEST
from tierline.tiers.phone import InvalidCaller

log = logging.getLogger("tierline.router")
access = logging.getLogger("tierline.access")

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


# The request item naming the token a request of a "backoffice" route came with (its handler
# may allow that token less than the IVR's).
TOKEN: web.RequestKey[str] = web.RequestKey("tierline_token", str)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("tierline_request_id", str)


def authenticate(request: web.Request, role: Role, tokens: Mapping[TokenName, bytes]) -> TokenName:
    """Which of the tokens `role` accepts the request carries; else 401 (none or a wrong one)
    or 403 (the token of another role). Called only for a guarded role (`TOKENS_OF`)."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "unauthorized", "this route needs a bearer token")
    # aiohttp hands undecodable header bytes over as lone surrogates: turn them back into
    # the bytes that were sent, which then simply fail to match (401, never a 500).
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    accepted = TOKENS_OF[role]
    for name in accepted:
        expected = tokens[name]
        if expected and hmac.compare_digest(given_bytes, expected):
            return name
    for name, other in tokens.items():
        if name not in accepted and other and hmac.compare_digest(given_bytes, other):
            raise ApiError(403, "forbidden", f"this token is not allowed on {role} routes")
    raise ApiError(401, "unauthorized", "wrong bearer token")


def open_roles(api_token: str, admin_token: str) -> list[str]:
    """The roles left open (no token). The backoffice token is optional: without it the back
    office uses the IVR token, and its routes are guarded (or open) with the IVR routes."""
    return [role for role, token in (("api", api_token), ("admin", admin_token)) if not token]


# --- request figures and ids -----------------------------------------------------------------

# Upper bounds (seconds) of the request-time buckets: the memory store answers in well under a
# millisecond, the Redis store in a few, and a request deadline is 0.4 s by default.
LATENCY_BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"  # a client's own id kept as given (the OpenAPI document says so)
_SANE_ID = re.compile(REQUEST_ID_PATTERN)


class RouteFigures:
    """One route's answers: per status class (`by_class[status // 100]`), and their time in buckets."""

    __slots__ = ("buckets", "by_class", "route", "seconds")

    def __init__(self, route: str) -> None:
        self.route = route
        self.by_class = [0] * 6  # index 1-5: 1xx-5xx (0 unused: no arithmetic on the hot path)
        self.buckets = [0] * (len(LATENCY_BOUNDS) + 1)  # the last: above every bound
        self.seconds = 0.0


class RequestFigures:
    """This process's requests, per wrapped handler, and the store's refusals by code.

    Keyed by the wrapped handler: the method is read from the app's router when /metrics is
    scraped (`rows`), not per request (each handler is registered for one method)."""

    def __init__(self) -> None:
        self.by_handler: dict[Handler, RouteFigures] = {}
        self.store_errors: dict[str, int] = {}

    def rows(self, app: web.Application) -> Iterator[tuple[str, RouteFigures]]:
        """(method, figures) of every route of `app` this gate wrapped ("*": the no-route catch-all)."""
        for route in app.router.routes():
            figures = self.by_handler.get(route.handler)
            if figures is not None:
                yield route.method, figures


REQUEST_FIGURES = web.AppKey("request_figures", RequestFigures)
_ID_PREFIX = secrets.token_hex(4) + "-"  # a process's ids do not repeat another's
_next_id = count(1).__next__


def request_id(request: web.Request) -> str:
    """The client's `X-Request-Id` if it is a sane token (at most 128 of [A-Za-z0-9._:-]), else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given is not None and _SANE_ID.fullmatch(given):
        return given
    return f"{_ID_PREFIX}{_next_id():x}"


async def begin_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Send a streamed answer's headers, its request's id among them: the gate puts the id on
    the answers its handlers return, and by then a streamed one has begun."""
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers[REQUEST_ID_HEADER] = rid
    await response.prepare(request)


def _record(
    request: web.Request, figures: RouteFigures, response: web.StreamResponse, started: float, rid: str
) -> None:
    """Count the answer, file its time and put the request's id on it (a streamed answer
    carries it already: `begin_stream`). Not an `on_response_prepare` hook: a signal sent for
    every answer cost the route ~1 % of its instructions (callgrind), 2–3 % of a py-spy profile."""
    elapsed = perf_counter() - started
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
    status = response.status
    figures.by_class[status // 100] += 1
    figures.buckets[bisect_left(LATENCY_BOUNDS, elapsed)] += 1
    figures.seconds += elapsed
    if access.isEnabledFor(logging.DEBUG):
        access.debug(
            "%s %s %d %.2f ms",
            request.method,
            request.path,
            status,
            elapsed * 1000,
            extra={"status": status, "duration_ms": round(elapsed * 1000, 3)},
        )


def _failed(request: web.Request, exc: Exception, store_errors: dict[str, int]) -> web.StreamResponse:
    if isinstance(exc, EngineError):
        store_errors[exc.code] = store_errors.get(exc.code, 0) + 1
    return error_answer(request, exc)


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

    def __init__(
        self, api_token: str, admin_token: str, max_in_flight: int, budget_s: float | None, backoffice_token: str = ""
    ) -> None:
        self.tokens: dict[TokenName, bytes] = {
            "api": api_token.encode(),
            "admin": admin_token.encode(),
            "backoffice": backoffice_token.encode(),
        }
        self.max_in_flight = max_in_flight
        self.budget_s = budget_s
        self.shed = Shed()
        self.figures = RequestFigures()
        self.in_flight = 0  # call-path requests in progress in this process

    def wrap(self, handler: Handler, role: Role | None, path: str) -> Handler:
        """`handler` behind errors, auth (`role`; None: by the surface of the request's path) and,
        for a route under the call path, admission. One wrapper for every route: a second
        coroutine layer for admission would cost what leaving middlewares saved."""
        gate, tokens, errors, shed = self, self.tokens, self.figures.store_errors, self.shed
        limit, budget_s = self.max_in_flight, self.budget_s
        admits = role is not None and path.startswith(CALL_PATH)
        figures = RouteFigures("(no route)" if role is None else path)

        async def gated(request: web.Request) -> web.StreamResponse:
            started = perf_counter()
            rid = request_id(request)
            request[REQUEST_ID] = rid
            context = REQUEST.set((rid, figures.route, request))
            try:
                response: web.StreamResponse
                try:
                    by = surface_role(request.path) if role is None else role
                    guards = TOKENS_OF[by]
                    if guards and tokens[guards[0]]:
                        token = authenticate(request, by, tokens)
                        if by == "backoffice":
                            request[TOKEN] = token
                    if not admits:
                        response = await handler(request)
                    elif limit and gate.in_flight >= limit:
                        shed.at_admission += 1
                        response = _overloaded(
                            f"{gate.in_flight} requests in progress here (limit {limit}); retry shortly"
                        )
                    else:
                        gate.in_flight += 1
                        try:
                            if budget_s is None:
                                response = await handler(request)
                            else:
                                with request_deadline(budget_s):
                                    response = await handler(request)
                        except Overloaded as exc:
                            shed.at_deadline += 1
                            errors[exc.code] = errors.get(exc.code, 0) + 1
                            response = _overloaded(exc.message)
                        finally:
                            gate.in_flight -= 1
                except Exception as exc:
                    try:
                        response = _failed(request, exc, errors)
                    except web.HTTPException as redirect:  # error_answer re-raises a redirect
                        _record(request, figures, redirect, started, rid)
                        raise
                _record(request, figures, response, started, rid)
                return response
            finally:
                REQUEST.reset(context)

        self.figures.by_handler[gated] = figures
        return gated


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

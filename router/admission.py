"""The call path's admission limit and request deadline (`/v1`: the IVR and the agents).

A process that is itself overloaded answers `503 overloaded` with `Retry-After` at once,
before any store work, rather than taking the request and timing it out half-done: past
`max_in_flight` requests in progress, a new one is shed. An admitted request gets one
deadline (`request_deadline`) that all its Redis calls share, so a route that re-reads the
tier meta, looks the caller up and runs the engine script still answers within the budget.

Shed requests are counted per process (`Shed`, exported by `/metrics` as
`tierline_requests_shed_total`): shedding is this process's decision, unlike the store's
figures, so Prometheus sums it over the instances it scrapes.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from tierline.queue.errors import Overloaded
from tierline.queue.redis_link import request_deadline
from tierline.router.errors import Handler, error_response

CALL_PATH = "/v1/"
RETRY_AFTER_S = "1"


class Shed:
    """This process's count of `503 overloaded` answers, by where the request was stopped."""

    def __init__(self) -> None:
        self.at_admission = 0  # refused before any store work: too many requests in flight
        self.at_deadline = 0  # admitted, but this process fell too far behind to finish in time


SHED = web.AppKey("shed", Shed)


def make_admission_middleware(max_in_flight: int, budget_s: float | None, shed: Shed) -> Middleware:
    """`max_in_flight` 0 = no limit. `budget_s`: the deadline of every admitted call-path request
    (None on the memory store, which makes no Redis calls to bound)."""
    in_flight = 0

    @web.middleware
    async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if not request.path.startswith(CALL_PATH):
            return await handler(request)
        if max_in_flight and in_flight >= max_in_flight:
            shed.at_admission += 1
            return _overloaded(f"{in_flight} requests in progress here (limit {max_in_flight}); retry shortly")
        in_flight += 1
        try:
            if budget_s is None:
                return await handler(request)
            with request_deadline(budget_s):
                return await handler(request)
        except Overloaded as exc:
            shed.at_deadline += 1
            return _overloaded(exc.message)
        finally:
            in_flight -= 1

    return admission


def _overloaded(message: str) -> web.Response:
    return error_response(503, Overloaded.code, message, {"Retry-After": RETRY_AFTER_S})

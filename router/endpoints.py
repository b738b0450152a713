"""The route table: each endpoint declared once, with its body and answers.

The app registers its handlers from this table and `/openapi.json` is generated from it,
so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Role = Literal["public", "api", "admin"]


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    enum: tuple[str, ...] | None = None
    integer: tuple[int, int] | None = None  # (minimum, maximum) for a whole-number parameter
    number: tuple[float, float] | None = None  # (minimum, maximum) for a decimal-number parameter


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    role: Role
    body: type | None = None
    body_media: tuple[str, ...] = ("application/json",)
    responses: dict[int, type | None] = field(default_factory=dict)
    query: tuple[QueryParam, ...] = ()
    produces: str = "application/json"


class EndpointTable:
    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        role: Role,
        responses: dict[int, type | None],
        body: type | None = None,
        body_media: tuple[str, ...] = ("application/json",),
        query: tuple[QueryParam, ...] = (),
        produces: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(method, path, handler, summary, role, body, body_media, responses, query, produces)
            )
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)

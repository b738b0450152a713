"""The route table: each endpoint declared once, with its role, body and answers.

The app registers its handlers from this table, each wrapped with the role it declares
(`gate.Gate.wrap`), and `/openapi.json` is generated from it, so neither can drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from tierline.router.plumbing.params import PATH_PARAMS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Who may call an endpoint. "api": the IVR/agent token; "admin": the supervisors' token;
# "backoffice": the back office's work (take and close callbacks, read caller records), open to
# the backoffice token and to the IVR/agent token, which keeps everything it did before the
# backoffice role existed; "public": anyone. `TOKENS_OF` says which tokens each role accepts.
Role = Literal["public", "api", "admin", "backoffice"]
TokenName = Literal["api", "admin", "backoffice"]
# The first token of a role guards it: a role whose first token is not configured is open (the
# backoffice routes are open exactly when the IVR routes are).
TOKENS_OF: dict[Role, tuple[TokenName, ...]] = {
    "public": (),
    "api": ("api",),
    "admin": ("admin",),
    "backoffice": ("api", "backoffice"),
}

CALL_PATH = "/v1/"  # the IVR/agent surface: api token, admission limit and deadline


def surface_role(path: str) -> Role:
    """The role of a path that matches no endpoint (404, 405): that of the surface it lies in."""
    if path.startswith(CALL_PATH):
        return "api"
    if path.startswith("/admin") or path == "/metrics":
        return "admin"
    return "public"


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


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
    also_produces: tuple[str, ...] = ()  # other media types a 2xx answer may take (e.g. format=csv), as text


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
        also_produces: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method, path, handler, summary, role, body, body_media, responses, query, produces, also_produces
                )
            )
            return handler

        return register

    def add_to(self, app: web.Application, wrap: Callable[[Handler, Role, str], Handler]) -> None:
        """Register every endpoint's handler as `wrap(handler, role, path)` (`Gate.wrap`)."""
        for endpoint in self.endpoints:
            undeclared = [name for name in path_params(endpoint.path) if name not in PATH_PARAMS]
            if undeclared:
                raise ValueError(f"{endpoint.path}: path parameter(s) {undeclared} have no rule in PATH_PARAMS")
            app.router.add_route(endpoint.method, endpoint.path, wrap(endpoint.handler, endpoint.role, endpoint.path))

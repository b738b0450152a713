"""Bearer tokens and roles: one token for the IVR/agent API, one for /admin and /metrics.

A role with no token configured is open; the CLI then keeps the service on loopback
(see `cli.check_bind`). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import re

from aiohttp import web
from aiohttp.typedefs import Middleware

from tierline.router.endpoints import Handler, Role
from tierline.router.errors import ApiError

# The dashboard page and its assets are public (a browser sends no bearer header when it
# navigates); the page's script sends the admin token on the /admin API calls it makes.
# Asset names are dot-separated words (no "..", no "/"); `{name}` is the route's template.
_PUBLIC_ADMIN = re.compile(r"/admin/?|/admin/static/([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*|\{name\})")


def role_of(path: str) -> Role:
    if path.startswith("/v1/"):
        return "api"
    if _PUBLIC_ADMIN.fullmatch(path):
        return "public"
    if path.startswith("/admin") or path == "/metrics":
        return "admin"
    return "public"


def make_auth_middleware(api_token: str, admin_token: str) -> Middleware:
    tokens: dict[Role, bytes] = {"api": api_token.encode(), "admin": admin_token.encode()}

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        role = role_of(request.path)
        expected = tokens.get(role, b"")
        if expected:
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
        return await handler(request)

    return auth_middleware


def open_roles(api_token: str, admin_token: str) -> list[str]:
    return [role for role, token in (("api", api_token), ("admin", admin_token)) if not token]

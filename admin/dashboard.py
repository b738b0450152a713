"""`GET /admin/`: the supervisors' live dashboard, a static page with no build step.

The page (`static/dashboard.html`, `.js`, `.css`, shipped as package data) is public: a
browser cannot send a bearer header when it navigates, and the page holds no data. Its
script asks for the admin token (a field kept in sessionStorage, or `#token=` in the URL
fragment, which never leaves the browser) and sends it as `Authorization: Bearer` on its
polls of `/admin/sla` and `/admin/callbacks`; every figure stays behind the admin token.

Live updates are a short poll every 2 s rather than server-sent events: `EventSource`
cannot send an Authorization header (the token would have to go in the URL, and so into
access logs), and a poll needs nothing more from a shared store than the reads it already
answers, whichever instance behind a load balancer takes it.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from tierline.router.errors import ApiError

ASSET_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
PAGE = "dashboard.html"
# No inline script or style, nothing from elsewhere: the page only talks to this service.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> tuple[bytes, str]:
    suffix = name[name.rfind(".") :] if "." in name else ""
    kind = ASSET_TYPES.get(suffix)
    if kind is None or "/" in name or name.startswith("."):
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    path = resources.files("tierline.admin").joinpath("static", name)
    if not path.is_file():
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    return path.read_bytes(), kind


async def dashboard_page(request: web.Request) -> web.Response:
    body, kind = _asset(PAGE)
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=SECURITY_HEADERS)


async def dashboard_asset(request: web.Request) -> web.Response:
    body, kind = _asset(request.match_info["name"])
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=SECURITY_HEADERS)


async def dashboard_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/admin/")

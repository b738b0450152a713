"""The supervisors' live dashboard (`GET /admin/`, served by router/admin_api.py): a static
page with no build step, and the rule of which files it may serve.

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

ASSET_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",  # the language catalogues (i18n.<lang>.json)
}
PAGE = "dashboard.html"
WORKBENCH_PAGE = "workbench.html"  # the back office's page (router/workbench_api.py)
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


def asset(name: str) -> tuple[bytes, str] | None:
    """A shipped asset's bytes and content type; None for a name that is not one (unknown,
    hidden, or reaching outside the folder)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    kind = ASSET_TYPES.get(suffix)
    if kind is None or "/" in name or name.startswith("."):
        return None
    path = resources.files("tierline.admin").joinpath("static", name)
    if not path.is_file():
        return None
    return path.read_bytes(), kind

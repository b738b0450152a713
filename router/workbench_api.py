"""`/workbench/`: the back office's callback workbench (issue 20), a public page and assets like
the dashboard's: its script, style sheet and language catalogues are the dashboard's assets
(`/admin/static/…`, public), served by admin/dashboard.py with the same strict headers.

The page holds no data: its script asks for the agent id and token (kept in the tab) and does
everything through the API with that token — `POST /v1/agents/{id}/next` with `only:
"callbacks"` and `POST /v1/callbacks/{id}/outcome`, both open to the backoffice token.
"""

from __future__ import annotations

from aiohttp import web

from tierline.admin import dashboard
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.errors import ApiError

workbench_api = EndpointTable()


@workbench_api.route(
    "GET",
    "/workbench/",
    summary="The back office's callback workbench (public; its script sends the agent's token on its own requests)",
    role="public",
    responses={200: None},
    produces="text/html",
)
async def workbench_page(request: web.Request) -> web.Response:
    return _asset(dashboard.WORKBENCH_PAGE)


@workbench_api.route(
    "GET", "/workbench", summary="Redirect to the workbench, /workbench/", role="public", responses={308: None}
)
async def workbench_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/workbench/")


def _asset(name: str) -> web.Response:
    found = dashboard.asset(name)
    if found is None:
        raise ApiError(404, "not_found", f"no workbench asset {name!r}")
    body, kind = found
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=dashboard.SECURITY_HEADERS)

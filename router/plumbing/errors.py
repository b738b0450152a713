"""The error shape: `{"error": {"code", "message"}}` with the fitting status, and the
exceptions the HTTP layer raises to produce it (`gate.error_answer` turns them into answers)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from tierline.router.plumbing.messages import ErrorBody, ErrorDetail


class ApiError(Exception):
    """A request the HTTP layer refuses (bad body, bad query, bad path parameter, auth)."""

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

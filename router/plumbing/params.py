"""Path parameters: every `{name}` a route path may hold, each with its one rule.

Handlers read them through `path_param`; `/openapi.json` describes them from this same table;
the route table refuses to register a path whose parameter has no rule here. An id in a path
is held to the rule of an id in a body (else 422 `invalid_field`, before any store is asked);
a caller is normalised as in a body (else 422 `invalid_caller`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.messages import IDENT_CHARS, IDENT_MAX
from tierline.tiers.phone import normalise_caller


@dataclass(frozen=True)
class PathParam:
    schema: dict[str, Any]  # as /openapi.json states it
    read: Callable[[str, str], str]  # (name, the raw segment) -> the value, or raises


_IDENT = re.compile(f"[{IDENT_CHARS}]{{1,{IDENT_MAX}}}")


def _ident(name: str, raw: str) -> str:
    if _IDENT.fullmatch(raw) is None:
        raise ApiError(422, "invalid_field", f"{name} must be 1-{IDENT_MAX} characters of {IDENT_CHARS}")
    return raw


def _caller(name: str, raw: str) -> str:
    return normalise_caller(raw)


def _asset_name(name: str, raw: str) -> str:
    # Not an id: the dashboard's asset lookup is its rule (an unknown or unsafe name is 404).
    return raw


IDENT = PathParam({"type": "string", "pattern": f"^[{IDENT_CHARS}]{{1,{IDENT_MAX}}}$"}, _ident)

PATH_PARAMS: dict[str, PathParam] = {
    "call_id": IDENT,
    "agent_id": IDENT,
    "callback_id": IDENT,
    "job_id": IDENT,  # a simulation job (router/simulate_api.py)
    "caller": PathParam(
        {"type": "string", "minLength": 1, "maxLength": 64, "description": "phone number, normalised on receipt"},
        _caller,
    ),
    "name": PathParam(IDENT.schema, _asset_name),
}


def path_param(request: web.Request, name: str) -> str:
    return PATH_PARAMS[name].read(name, request.match_info[name])

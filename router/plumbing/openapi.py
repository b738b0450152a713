"""`/openapi.json`: OpenAPI 3.1 generated from the route table and the msgspec message types.

Every operation takes an optional `X-Request-Id` header and every answer carries one (the
gate's: the client's own when sane, else a made one), written out in each operation and
answer (not as a `$ref`: a reader of one operation's parameters then needs no look-up).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tierline.router.plumbing.endpoints import Endpoint, path_params
from tierline.router.plumbing.gate import REQUEST_ID_HEADER, REQUEST_ID_PATTERN
from tierline.router.plumbing.messages import ErrorBody
from tierline.router.plumbing.params import PATH_PARAMS

_ERRORS = {
    400: "the body is not JSON or not an object",
    401: "missing or wrong bearer token",
    403: "the token is not allowed here",
    404: "unknown id or route",
    405: "wrong method",
    409: "conflict with the current state",
    413: "body too large",
    415: "wrong content type",
    422: "a field missing, unknown, of the wrong type or with an invalid value",
    503: "the store is unreachable (store_unavailable), or this process is overloaded (overloaded, with Retry-After)",
}
_REF = "#/components/schemas/{name}"
_REQUEST_ID_SCHEMA = {"type": "string", "pattern": f"^{REQUEST_ID_PATTERN}$"}
_REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "The caller's id for this request, echoed in the answer's X-Request-Id and on the request's "
    "log lines; without it (or when it does not match the pattern) Tierline makes one",
    "schema": _REQUEST_ID_SCHEMA,
}
_REQUEST_ID_ANSWER = {
    "description": "The request's id: the one sent in X-Request-Id, else one Tierline made; also on its log lines",
    "required": True,
    "schema": _REQUEST_ID_SCHEMA,
}
_ANSWER_HEADERS = {REQUEST_ID_HEADER: _REQUEST_ID_ANSWER}


def build_openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    types: set[type] = {ErrorBody}
    for endpoint in endpoints:
        if endpoint.body is not None:
            types.add(endpoint.body)
        types.update(t for t in endpoint.responses.values() if t is not None)
    ordered = sorted(types, key=lambda t: t.__name__)
    refs, components = msgspec.json.schema_components(ordered, ref_template=_REF)
    ref_of = dict(zip(ordered, refs, strict=True))

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "tags": [endpoint.role],
            "responses": {},
        }
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name].schema}
            for name in path_params(endpoint.path)
        ]
        for param in endpoint.query:
            schema: dict[str, Any] = {"type": "string"}
            if param.integer is not None:
                schema = {"type": "integer", "minimum": param.integer[0], "maximum": param.integer[1]}
            if param.number is not None:
                schema = {"type": "number", "minimum": param.number[0], "maximum": param.number[1]}
            if param.enum:
                schema["enum"] = list(param.enum)
            parameters.append(
                {
                    "name": param.name,
                    "in": "query",
                    "required": False,
                    "description": param.description,
                    "schema": schema,
                }
            )
        parameters.append(_REQUEST_ID_PARAMETER)
        operation["parameters"] = parameters
        if endpoint.role != "public":
            operation["security"] = [{"bearer": []}]
        if endpoint.body is not None:
            # An empty body counts as {}, so a body is only required when the struct has required fields.
            required = any(f.required for f in msgspec.structs.fields(endpoint.body))
            operation["requestBody"] = {
                "required": required,
                "content": {media: {"schema": ref_of[endpoint.body]} for media in endpoint.body_media},
            }
        elif endpoint.body_media != ("application/json",):
            operation["requestBody"] = {
                "required": True,
                "content": {media: {"schema": {"type": "string"}} for media in endpoint.body_media},
            }
        for status, kind in endpoint.responses.items():
            answer: dict[str, Any] = {"description": "OK" if status < 300 else "see body", "headers": _ANSWER_HEADERS}
            if kind is not None:
                answer["content"] = {endpoint.produces: {"schema": ref_of[kind]}}
            elif endpoint.produces != "application/json" and status < 300:
                answer["content"] = {endpoint.produces: {"schema": {"type": "string"}}}
            if status < 300:
                for media in endpoint.also_produces:
                    answer.setdefault("content", {})[media] = {"schema": {"type": "string"}}
            operation["responses"][str(status)] = answer
        for status, why in _ERRORS.items():
            operation["responses"].setdefault(
                str(status),
                {
                    "description": why,
                    "headers": _ANSWER_HEADERS,
                    "content": {"application/json": {"schema": ref_of[ErrorBody]}},
                },
            )
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": "Tierline", "version": version, "description": "Call-center service-tier routing engine"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

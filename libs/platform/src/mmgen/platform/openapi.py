"""The OpenAPI document as the services really answer: every error an RFC 9457 problem.

FastAPI documents its own validation JSON (`HTTPValidationError`) for 422 and nothing for the
refusals the platform adds to every route, while every 4xx/5xx the platform sends is
`application/problem+json` (`mmgen.platform.problems`). `problem_openapi` rewrites the
generated document so clients and contract tests see what is sent:

- a `Problem` schema (with the 422's `errors` list) in the components;
- every documented 4xx/5xx answered as `application/problem+json` with that schema, unless the
  route declared another media type for it on purpose (the witness protocol's 409);
- on each operation, the refusals the platform itself produces: 401 and 403 where a bearer
  token is required, 400 (malformed JSON), 413 and 422 where there is a body, 422 where
  there are parameters, 404 where the path names a resource, 500 everywhere, and `4XX` for
  the refusals a service's domain rules map to problems (their `type` names them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem details. `type` is `urn:mmgen:problem:<slug>`; members beyond the "
        "standard ones are extensions of the particular problem."
    ),
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:mmgen:problem:validation-failed"]},
        "title": {"type": "string", "examples": ["Request validation failed"]},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "examples": [422]},
        "detail": {"type": "string", "examples": ["invalid fields: title"]},
        "instance": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "trace_id": {"type": "string", "description": "the request's trace, when recorded"},
        "errors": {
            "type": "array",
            "description": "422 only: each invalid field (submitted values are never echoed)",
            "items": {
                "type": "object",
                "required": ["field", "loc", "msg", "type"],
                "properties": {
                    "field": {"type": "string"},
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

#: The platform's own refusals: status → description.
STANDARD_ERRORS = {
    "400": "Malformed JSON body (`malformed-json`), or a malformed request",
    "401": "No bearer token, or one that is invalid, expired or revoked",
    "403": "The caller's role or declared purpose does not allow this",
    "404": "No such resource, or none the caller may see",
    "413": "Request body larger than the route's limit",
    "422": "Request validation failed (`validation-failed`, with `errors`)",
    "4XX": "Refused by a rule of the service (the problem's `type` names which)",
    "500": "Internal error (no detail is disclosed; `trace_id` finds it in the logs)",
}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}}


def _is_error(status: str) -> bool:
    return status[:1] in ("4", "5")


def _standard_statuses(operation: dict[str, Any], path: str) -> list[str]:
    statuses = ["4XX", "500"]
    if operation.get("security"):
        statuses += ["401", "403"]
    if operation.get("requestBody"):
        statuses += ["400", "413", "422"]
    if operation.get("parameters"):
        statuses.append("422")
    if "{" in path:
        statuses.append("404")
    return statuses


def _rewrite_operation(operation: dict[str, Any], path: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, response in list(responses.items()):
        if not _is_error(status):
            continue
        content: dict[str, Any] = response.get("content") or {}
        others = {k: v for k, v in content.items() if k not in ("application/json", PROBLEM_JSON)}
        if others:
            continue  # a media type the route chose on purpose (a protocol's own body)
        response["content"] = {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}
        if status in STANDARD_ERRORS and response.get("description") == "Validation Error":
            response["description"] = STANDARD_ERRORS[status]
    for status in _standard_statuses(operation, path):
        responses.setdefault(status, _problem_response(STANDARD_ERRORS[status]))
    operation["responses"] = dict(sorted(responses.items(), key=lambda item: item[0]))


def _drop_unused_validation_schemas(document: dict[str, Any]) -> None:
    """Remove FastAPI's validation schemas once nothing refers to them (no route sends them)."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    for name in _FASTAPI_VALIDATION:  # the envelope first: it is what refers to the other
        others = {k: v for k, v in schemas.items() if k != name}
        text = json.dumps([document.get("paths", {}), others])
        if name in schemas and f"#/components/schemas/{name}" not in text:
            del schemas[name]


def problem_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of FastAPI's `document` with every error response a `Problem` (see the module)."""
    result = copy.deepcopy(document)
    for path, item in result.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _rewrite_operation(item[method], path)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    _drop_unused_validation_schemas(result)
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    return result


def install_problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Make `app.openapi()` (and so `/openapi.json`) return the rewritten document, once built."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                terms_of_service=app.terms_of_service,
                contact=app.contact,
                license_info=app.license_info,
                routes=app.routes,
                webhooks=app.webhooks.routes,
                tags=app.openapi_tags,
                servers=app.servers,
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
            app.openapi_schema = problem_openapi(generated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return openapi

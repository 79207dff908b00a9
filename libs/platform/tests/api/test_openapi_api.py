"""The served OpenAPI document says what the app sends: every error a `Problem` (RFC 9457)."""

from __future__ import annotations

from typing import Any

import httpx

from mmgen.platform import PROBLEM_JSON
from mmgen.platform.openapi import PROBLEM_REF, problem_openapi

PROBLEM = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


async def spec_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_validation_errors_are_documented_as_problems(client: httpx.AsyncClient) -> None:
    spec = await spec_of(client)
    create = spec["paths"]["/widgets"]["post"]["responses"]
    assert create["422"]["content"] == PROBLEM
    assert {"400", "413", "422", "4XX", "500"} <= create.keys()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


async def test_secured_routes_document_401_and_403_and_paths_404(
    client: httpx.AsyncClient,
) -> None:
    spec = await spec_of(client)
    read = spec["paths"]["/subjects/{subject_id}"]["get"]
    assert read["security"] == [{"HTTPBearer": []}]
    assert {"401", "403", "404", "422"} <= read["responses"].keys()
    for status, response in read["responses"].items():
        if status[0] in "45":
            assert response["content"] == PROBLEM, status
    health = spec["paths"]["/healthz"]["get"]["responses"]
    assert "401" not in health and "404" not in health


async def test_what_a_problem_is_documented_as_matches_what_is_sent(
    client: httpx.AsyncClient,
) -> None:
    """A real 422 fits the documented schema's required members and types."""
    spec = await spec_of(client)
    schema = spec["components"]["schemas"]["Problem"]
    sent = await client.post("/widgets", json={"unexpected": True})
    assert sent.status_code in (401, 422), sent.text
    assert sent.headers["content-type"] == PROBLEM_JSON
    body = sent.json()
    assert set(schema["required"]) <= body.keys()
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str)
    assert isinstance(body["status"], int)


def test_a_protocol_body_chosen_by_the_route_is_kept() -> None:
    document = {
        "openapi": "3.1.0",
        "paths": {
            "/add": {
                "post": {
                    "responses": {
                        "200": {"description": "ok"},
                        "409": {"description": "size", "content": {"text/x.size": {}}},
                        "404": {
                            "description": "nope",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    }
                }
            }
        },
    }
    rewritten = problem_openapi(document)
    responses = rewritten["paths"]["/add"]["post"]["responses"]
    assert responses["409"]["content"] == {"text/x.size": {}}
    assert responses["404"]["content"] == PROBLEM
    assert document["paths"]["/add"]["post"]["responses"]["404"]["content"] != PROBLEM  # a copy

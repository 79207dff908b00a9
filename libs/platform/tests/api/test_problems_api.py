"""Every error the app returns is RFC 9457 problem+json: 400 401 403 404 405 409 413 422 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from mmgen.platform import PROBLEM_JSON

STANDARD_MEMBERS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body.keys() >= STANDARD_MEMBERS
    assert body["status"] == status
    assert body["type"] == type_
    assert body["instance"] == response.request.url.path
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_400_from_a_problem_error(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/bad"), 400, "urn:mmgen:problem:bad-request")
    assert body["detail"] == "the widget colour is not a colour"


async def test_400_for_a_foreign_cursor(client: httpx.AsyncClient) -> None:
    response = await client.get("/numbers", params={"cursor": "%%%%"})
    assert_problem(response, 400, "urn:mmgen:problem:invalid-cursor")


async def test_401_without_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/widgets/1")
    assert_problem(response, 401, "urn:mmgen:problem:unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_401_with_a_non_bearer_scheme(client: httpx.AsyncClient) -> None:
    response = await client.get("/widgets/1", headers={"Authorization": "Basic dTpw"})
    assert_problem(response, 401, "urn:mmgen:problem:unauthenticated")


async def test_403_wrong_role(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    response = await client.get("/subjects/abc", headers=auth(token("creator")))
    body = assert_problem(response, 403, "urn:mmgen:problem:role-not-allowed")
    assert body["allowed_roles"] == ["admin", "client", "compliance", "staff"]


async def test_404_unknown_route(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404, "urn:mmgen:problem:not-found")


async def test_405_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.delete("/widgets/1")
    assert_problem(response, 405, "urn:mmgen:problem:method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_409_from_a_registered_domain_exception(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/conflict"), 409, "urn:mmgen:problem:slot-taken")
    assert body["title"] == "Slot taken"
    assert body["detail"] == "slot 7 is taken"


async def test_413_declared_content_length(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    response = await client.post("/uploads", content=b"x" * 1025, headers=auth(token()))
    body = assert_problem(response, 413, "urn:mmgen:problem:request-body-too-large")
    assert body["max_body_bytes"] == 1024


async def test_413_streamed_body_without_content_length(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 200

    request = client.build_request("POST", "/uploads", content=chunks())
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await client.send(request)
    assert_problem(response, 413, "urn:mmgen:problem:request-body-too-large")


async def test_413_streamed_json_body_before_parsing(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    async def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(10):
            yield b"z" * 200
        yield b'", "size": 1}'

    response = await client.post("/widgets", content=chunks(), headers=auth(token()))
    assert_problem(response, 413, "urn:mmgen:problem:request-body-too-large")


async def test_bodies_within_the_limit_pass(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(4):
            yield b"y" * 256

    response = await client.post("/uploads", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"received": 1024}


async def test_422_lists_every_invalid_field_without_echoing_values(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    response = await client.post(
        "/widgets",
        json={"name": "", "size": 0, "role": "admin", "password": "hunter2"},
        headers=auth(token()),
    )
    body = assert_problem(response, 422, "urn:mmgen:problem:validation-failed")
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "size", "role", "password"}
    for error in body["errors"]:
        assert error["loc"][0] == "body"
        assert error["msg"]
    assert "hunter2" not in response.text


async def test_422_for_a_path_parameter(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    response = await client.get("/widgets/not-a-number", headers=auth(token()))
    body = assert_problem(response, 422, "urn:mmgen:problem:validation-failed")
    assert body["errors"][0]["field"] == "widget_id"
    assert body["errors"][0]["loc"] == ["path", "widget_id"]


async def test_400_for_malformed_json_names_the_position(
    client: httpx.AsyncClient, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    response = await client.post(
        "/widgets",
        content=b'{"name": "a",, "x": 1}',
        headers={**auth(token()), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400, "urn:mmgen:problem:malformed-json")
    assert body["position"] == 13
    assert "not valid JSON" in body["detail"]
    assert "at character 13" in body["detail"]
    assert "invalid fields" not in body["detail"]


async def test_500_reveals_nothing_about_the_exception(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    body = assert_problem(response, 500, "urn:mmgen:problem:internal-error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert "boom" not in body["detail"]
    assert len(body["trace_id"]) == 32

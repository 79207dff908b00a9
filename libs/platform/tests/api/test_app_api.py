"""The app factory's wiring: lifespans, problem mapping, pagination, misconfiguration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request

from mmgen.platform import (
    ConfigurationError,
    PlatformApp,
    ProblemSpec,
    ReadinessCheck,
    ServiceSettings,
    create_app,
    decode_cursor,
)


class DomainError(Exception):
    pass


class NotFoundError(DomainError):
    pass


async def test_the_services_lifespan_runs_inside_the_platforms(serve: Any) -> None:
    events: list[str] = []
    router = APIRouter()

    @router.get("/state", name="read_state")
    async def read_state(request: Request) -> dict[str, str]:
        return {"resource": request.app.state.resource}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("start")
        app.state.resource = "connected"
        yield
        events.append("stop")

    app = create_app(
        ServiceSettings(environment="test"),
        title="t",
        version="1",
        routers=[router],
        lifespan=lifespan,
    )
    async with serve(app) as client:
        assert events == ["start"]
        assert (await client.get("/state")).json() == {"resource": "connected"}
    assert events == ["start", "stop"]


async def test_the_most_specific_registered_problem_wins(serve: Any) -> None:
    router = APIRouter()

    @router.get("/missing", name="missing")
    async def missing() -> None:
        raise NotFoundError("project p9 does not exist")

    @router.get("/other", name="other")
    async def other() -> None:
        raise DomainError("generic domain failure")

    app = create_app(
        ServiceSettings(environment="test"),
        title="t",
        version="1",
        routers=[router],
        problems={DomainError: ProblemSpec(status=422, title="Rule broken", detail="not allowed")},
    )
    app.register_problem(NotFoundError, status=404, title="No such thing", slug="no-such-thing")
    async with serve(app) as client:
        missing_body = (await client.get("/missing")).json()
        other_body = (await client.get("/other")).json()
    assert missing_body["status"] == 404
    assert missing_body["type"] == "urn:mmgen:problem:no-such-thing"
    assert missing_body["detail"] == "project p9 does not exist"
    assert other_body["status"] == 422
    assert other_body["detail"] == "not allowed"


async def test_cursor_pagination_walks_every_item_once(
    client: Any,
) -> None:
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/numbers", params=params)).json()
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert decode_cursor(cursor) == {"after": body["items"][-1]}
    assert seen == [0, 1, 2, 3, 4, 5, 6]
    assert pages == 3


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_limits_outside_the_bounds_are_422(client: Any, limit: int) -> None:
    response = await client.get("/numbers", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


async def test_auth_without_a_verifier_is_a_500_not_an_open_door(
    make_app: Callable[..., PlatformApp],
    serve: Any,
    token: Callable[..., str],
    auth: Callable[[str], dict[str, str]],
) -> None:
    async with serve(make_app(token_verifier=None)) as client:
        response = await client.get("/widgets/1", headers=auth(token()))
    assert response.status_code == 500
    assert "verifier" not in response.text


def test_readiness_check_names_are_unique(make_app: Callable[..., PlatformApp]) -> None:
    async def ok() -> None:
        return None

    app = make_app(readiness_checks=[ReadinessCheck("database", ok)])
    with pytest.raises(ConfigurationError, match="database"):
        app.add_readiness_check(ReadinessCheck("database", ok))

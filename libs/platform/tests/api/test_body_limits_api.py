"""A route's own body limit (`@body_limit`): above or below the app's, for that route only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Request

from mmgen.platform import PlatformApp, ServiceSettings, body_limit, create_app

APP_LIMIT = 1024
UPLOAD_LIMIT = 10_000


def _app() -> tuple[PlatformApp, list[int]]:
    """An app with a 1 KiB limit, an upload route allowed 10,000 bytes, a route allowed 100."""
    received: list[int] = []
    router = APIRouter()

    async def count(request: Request) -> dict[str, int]:
        size = 0
        async for piece in request.stream():
            size += len(piece)
        received.append(size)
        return {"received": size}

    @router.post("/files", name="upload")
    @body_limit(UPLOAD_LIMIT)
    async def upload(request: Request) -> dict[str, int]:
        return await count(request)

    @router.post("/notes", name="note")
    async def note(request: Request) -> dict[str, int]:
        return await count(request)

    @router.post("/files/{file_id}/tags", name="tag")
    @body_limit(100)
    async def tag(request: Request, file_id: str) -> dict[str, int]:
        return await count(request)

    settings = ServiceSettings(environment="test", max_body_bytes=APP_LIMIT, log_json=False)
    return create_app(settings, title="t", version="1", routers=[router]), received


async def _pieces(total: int, size: int = 300) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"u" * min(size, total - start)


def _too_large(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == "urn:mmgen:problem:request-body-too-large"
    assert body["max_body_bytes"] == limit


async def test_a_route_takes_its_own_limit_and_the_others_keep_the_apps() -> None:
    app, received = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # the upload route: above the app's limit, declared or streamed, up to its own
        ok = await client.post("/files", content=b"a" * 5_000)
        assert ok.json() == {"received": 5_000}
        streamed = await client.post("/files", content=_pieces(UPLOAD_LIMIT))
        assert streamed.json() == {"received": UPLOAD_LIMIT}
        _too_large(await client.post("/files", content=b"a" * (UPLOAD_LIMIT + 1)), UPLOAD_LIMIT)
        _too_large(await client.post("/files", content=_pieces(UPLOAD_LIMIT + 1)), UPLOAD_LIMIT)
        # every other route: the app's limit, unchanged
        _too_large(await client.post("/notes", content=b"n" * 5_000), APP_LIMIT)
        _too_large(await client.post("/notes", content=_pieces(5_000)), APP_LIMIT)
        assert (await client.post("/notes", content=b"n" * APP_LIMIT)).status_code == 200
        # a route under the upload's path takes its own (smaller) limit, not the upload's
        _too_large(await client.post("/files/f1/tags", content=b"t" * 101), 100)
        assert (await client.post("/files/f1/tags", content=b"t" * 100)).status_code == 200
    # what was refused while streaming never reached the end of a handler
    assert received == [5_000, UPLOAD_LIMIT, APP_LIMIT, 100]


async def test_without_any_route_limit_the_apps_limit_holds_everywhere() -> None:
    router = APIRouter()

    @router.post("/files", name="upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    settings = ServiceSettings(environment="test", max_body_bytes=APP_LIMIT, log_json=False)
    app = create_app(settings, title="t", version="1", routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        _too_large(await client.post("/files", content=b"a" * 5_000), APP_LIMIT)
        _too_large(await client.post("/files", content=_pieces(5_000)), APP_LIMIT)

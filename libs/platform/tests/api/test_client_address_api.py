"""Through a real uvicorn server configured as `serve` runs it: a loopback peer's
`X-Forwarded-For` is ignored unless the settings name that peer a trusted proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Request

from mmgen.localstack.ports import free_port
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.app import server_config
from mmgen.platform.clients import client_address


def echo_router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami", name="whoami")
    async def whoami(request: Request) -> dict[str, str]:
        return {"client": client_address(request)}

    return router


@contextmanager
def running(settings: ServiceSettings) -> Iterator[str]:
    app = create_app(settings, title="t", version="1", routers=[echo_router()])
    server = uvicorn.Server(server_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(("trusted", "seen"), [((), "127.0.0.1"), (("127.0.0.1",), "198.51.100.7")])
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    trusted: tuple[str, ...], seen: str
) -> None:
    settings = ServiceSettings(
        environment="test", host="127.0.0.1", port=free_port(), trusted_proxies=trusted
    )
    assert (
        server_config(create_app(settings, title="t", version="1"), settings).proxy_headers is False
    )
    with running(settings) as url:
        response = httpx.get(
            f"{url}/whoami", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10
        )
    assert response.json() == {"client": seen}

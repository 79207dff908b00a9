"""Through a real uvicorn server configured as `serve` runs it: a loopback peer's
`X-Forwarded-For` is ignored unless the settings name that peer a trusted proxy, and our HTTP
client lets an idle connection go before the server closes it."""

from __future__ import annotations

import asyncio
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
from mmgen.platform.http import CLIENT_KEEPALIVE_EXPIRY_S, SERVER_KEEP_ALIVE_S, service_client


def echo_router() -> APIRouter:
    router = APIRouter()

    @router.get("/whoami", name="whoami")
    async def whoami(request: Request) -> dict[str, str]:
        return {"client": client_address(request)}

    @router.get("/peer", name="peer")
    async def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}  # one port per connection

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


async def test_a_client_lets_an_idle_connection_go_before_the_server_closes_it() -> None:
    """Otherwise a request can go out on a connection the server is closing, and fail with
    "Server disconnected without sending a response"."""
    settings = ServiceSettings(environment="test", host="127.0.0.1", port=free_port())
    config = server_config(create_app(settings, title="t", version="1"), settings)
    assert config.timeout_keep_alive == SERVER_KEEP_ALIVE_S >= 2 * CLIENT_KEEPALIVE_EXPIRY_S
    with running(settings) as url:
        async with service_client(10.0) as client:
            first = (await client.get(f"{url}/peer")).json()
            again = (await client.get(f"{url}/peer")).json()
            await asyncio.sleep(CLIENT_KEEPALIVE_EXPIRY_S + 0.5)
            later = (await client.get(f"{url}/peer")).json()
    assert again == first  # kept while in use
    assert later != first  # let go while idle, well within the server's keep-alive

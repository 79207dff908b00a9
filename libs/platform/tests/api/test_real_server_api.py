"""The same conventions through a real uvicorn server and real sockets (h11, chunked bodies)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from mmgen.localstack.ports import free_port
from mmgen.platform import PlatformApp


@pytest.fixture
def live_server(make_app: Callable[..., PlatformApp]) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        make_app(), host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_problems_over_a_real_connection(
    live_server: str, token: Callable[..., str], auth: Callable[[str], dict[str, str]]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"c" * 512

    with httpx.Client(base_url=live_server, timeout=30) as client:
        too_big = client.post("/uploads", content=chunks())
        declared = client.post("/uploads", content=b"d" * 5000)
        crashed = client.get("/boom")
        fine = client.get("/widgets/5", headers=auth(token()))
        ready = client.get("/readyz")

    for response, status in ((too_big, 413), (declared, 413), (crashed, 500)):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
    assert too_big.request.headers.get("transfer-encoding") == "chunked"
    assert "hunter2" not in crashed.text
    assert fine.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {}}


def test_the_server_keeps_serving_after_refusing_a_body(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        for _ in range(3):
            assert client.post("/uploads", content=b"e" * 4096).status_code == 413
            assert client.post("/uploads", content=b"f" * 100).json() == {"received": 100}


def test_openapi_is_served(live_server: str) -> None:
    spec: dict[str, Any] = httpx.get(f"{live_server}/openapi.json", timeout=10).json()
    assert spec["info"]["title"] == "platform test"

"""/healthz and /readyz against the real local database and broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port
from mmgen.platform import PlatformApp, ReadinessCheck, kafka_check, mongo_check


async def test_healthz_is_always_200(make_app: Callable[..., PlatformApp], serve: Any) -> None:
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    app = make_app(readiness_checks=[ReadinessCheck("stuck", hangs, timeout=0.05)])
    async with serve(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_readyz_is_ready_with_the_real_database_and_broker(
    make_app: Callable[..., PlatformApp], serve: Any, mongo_uri: str, kafka_bootstrap: str
) -> None:
    mongo: Any = AsyncMongoClient(mongo_uri, serverSelectionTimeoutMS=2000)
    try:
        app = make_app(readiness_checks=[mongo_check(mongo), kafka_check(kafka_bootstrap)])
        async with serve(app) as client:
            response = await client.get("/readyz")
    finally:
        await mongo.close()
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_names_the_database_once_it_is_down(
    make_app: Callable[..., PlatformApp],
    serve: Any,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    database = start_database(
        "127.0.0.1", free_port(), None, tmp_path / "database.log", sync_on_commit=False
    )
    mongo: Any = None
    try:
        mongo = AsyncMongoClient(database.extra["uri"], serverSelectionTimeoutMS=5000)
        app = make_app(readiness_checks=[kafka_check(kafka_bootstrap)])
        app.add_readiness_check(mongo_check(mongo, timeout=1.0))
        async with serve(app) as client:
            assert (await client.get("/readyz")).status_code == 200

            database.stop()
            response = await client.get("/readyz")
    finally:
        database.stop(kill=True)
        if mongo is not None:
            await mongo.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:mmgen:problem:not-ready"
    assert body["failing"] == ["database"]
    assert "database" in body["detail"]
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["database"] != "ok"


async def test_readyz_names_an_unreachable_broker(
    make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    app = make_app(readiness_checks=[kafka_check(closed, timeout=1.0)])
    async with serve(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


async def test_a_hanging_check_cannot_hang_readyz(
    make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    async def fine() -> None:
        return None

    app = make_app(
        readiness_checks=[ReadinessCheck("stuck", hangs, timeout=0.1), ReadinessCheck("ok", fine)]
    )
    async with serve(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"stuck": "timed out after 0.1s", "ok": "ok"}

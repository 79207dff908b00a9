"""Pytest fixtures: a real broker and database per test session, isolated names per test.

`--backend=local` (default) starts Tansu and SecantusDB with the same launcher as `mmgen up`;
`--backend=containers` runs the same tests against Apache Kafka and MongoDB through
testcontainers, and skips them with the reason when no Docker engine answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.containers import docker_available, start_containers
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Infra:
    """Where the session's broker and database answer."""

    kafka_bootstrap: str
    mongo_uri: str
    backend: str


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["local", "containers"],
        default=os.environ.get("MMGEN_TEST_BACKEND", "local"),
        help="infrastructure for tests that touch Kafka/MongoDB: the local stand-ins "
        "(default) or real Kafka and MongoDB through testcontainers (needs Docker)",
    )


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def infra(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Infra]:
    backend = request.config.getoption("--backend")
    if backend == "containers":
        ok, why = docker_available()
        if not ok:
            pytest.skip(f"--backend=containers: {why}")
        containers = start_containers()
        try:
            yield Infra(containers.kafka_bootstrap, containers.mongo_uri, "containers")
        finally:
            containers.close()
        return
    logs = tmp_path_factory.mktemp("localstack")
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    try:
        database = start_database(
            HOST, free_port(), None, logs / "database.log", sync_on_commit=False
        )
    except Exception:
        broker.stop()
        raise
    try:
        yield Infra(broker.address, database.extra["uri"], "local")
    finally:
        broker.stop()
        database.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def mongo_uri(infra: Infra) -> str:
    return infra.mongo_uri


@pytest.fixture
async def mongo_client(mongo_uri: str) -> AsyncIterator[Any]:
    from pymongo import AsyncMongoClient

    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def mongo_db(mongo_client: Any) -> AsyncIterator[Any]:
    """A database of its own for one test, dropped afterwards."""
    name = unique_name("t_")
    try:
        yield mongo_client[name]
    finally:
        await mongo_client.drop_database(name)


@pytest.fixture
def topic_prefix() -> str:
    """Prefix for every topic a test creates, so tests never read each other's messages."""
    return unique_name("t") + "."


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh local-state folder (what `.mmgen/` is for the CLI)."""
    path = tmp_path / "state"
    path.mkdir()
    return path

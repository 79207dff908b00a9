"""Pytest fixtures: a real broker and database per test session, isolated names per test.

`--backend=local` (default) starts Tansu and SecantusDB with the same launcher as `mmgen up`;
`--backend=containers` runs the same tests against Apache Kafka and MongoDB through
testcontainers, and refuses to run at all when no Docker engine answers (a run that skipped
every test would look green).

Under pytest-xdist every worker is a session of its own: its own broker and database on
ports of their own, logs under its own temporary folder. Whatever a session starts is killed
by the kernel if the session's process dies without tearing down (a crashed worker).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mmgen.localstack.components import launch_broker, launch_database, launch_mail_sink
from mmgen.localstack.containers import docker_available, start_containers
from mmgen.localstack.errors import ComponentExitedError, PortInUseError
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import children_die_with_this_process, start_together

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Infra:
    """Where the session's broker, database and SMTP sink answer (the sink keeps each message
    under `mail_dir`: `mmgen.localstack.mailsink.read_messages`)."""

    kafka_bootstrap: str
    mongo_uri: str
    backend: str
    smtp_host: str | None = None
    smtp_port: int | None = None
    mail_dir: Path | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["local", "containers"],
        default=os.environ.get("MMGEN_TEST_BACKEND", "local"),
        help="infrastructure for tests that touch Kafka/MongoDB: the local stand-ins "
        "(default) or real Kafka and MongoDB through testcontainers (needs Docker)",
    )


def pytest_configure(config: pytest.Config) -> None:
    children_die_with_this_process()
    if config.getoption("--backend") == "containers":
        ok, why = docker_available()
        if not ok:
            raise pytest.UsageError(
                f"--backend=containers needs a Docker engine: {why}. "
                "Start one (or point DOCKER_HOST at it), or run the default --backend=local."
            )


T = TypeVar("T")
_ADDRESS_IN_USE = re.compile(r"address (already )?in use|AddrInUse|errno 98", re.IGNORECASE)


def retry_on_port_clash(start: Callable[[], T], attempts: int = 3) -> T:
    """Run `start` (which picks free ports itself) again when a port it picked was taken.

    `free_port()` reserves its port against our other processes and the kernel's own picks,
    but a program that is not ours may still bind it before our server does (seconds, for a
    service). Any other failure propagates at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except PortInUseError:
            if attempt == attempts:
                raise
        except ComponentExitedError as exc:
            if attempt == attempts or not _ADDRESS_IN_USE.search(exc.log_tail):
                raise
    raise AssertionError("unreachable")


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def infra(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Infra]:
    backend = request.config.getoption("--backend")
    logs = tmp_path_factory.mktemp("localstack")
    mail_dir = logs / "mail"
    # The SMTP sink is ours on either backend (no container needed for it).
    [sink] = retry_on_port_clash(
        lambda: start_together(
            [lambda: launch_mail_sink(HOST, free_port(), mail_dir, logs / "mail.log")],
            timeout=30.0,
        )
    )
    try:
        if backend == "containers":  # a Docker engine answered at configure time
            containers = start_containers()
            try:
                yield Infra(
                    containers.kafka_bootstrap, containers.mongo_uri, "containers",
                    HOST, sink.port, mail_dir,
                )  # fmt: skip
            finally:
                containers.close()
            return
        broker, database = retry_on_port_clash(
            lambda: start_together(
                [
                    lambda: launch_broker(HOST, free_port(), logs / "broker.log"),
                    lambda: launch_database(
                        HOST, free_port(), None, logs / "database.log", sync_on_commit=False
                    ),
                ],
                timeout=30.0,
            )
        )
        try:
            yield Infra(broker.address, database.extra["uri"], "local", HOST, sink.port, mail_dir)
        finally:
            broker.stop()
            database.stop()
    finally:
        sink.stop()


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

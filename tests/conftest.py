"""System tests: every workspace service as its own process, over HTTP and Kafka.

`system` (package scope): every service against the session's broker and database (the same
launcher as `mmgen up`, starting the services together), isolated from other tests by a topic
prefix and a database-name prefix. It is stopped as soon as a worker moves on to tests outside
this folder: left running, its relays and consumers would load that worker's broker and
database for the rest of the run (pytest-xdist runs these files in any order, among others).
`own_broker_stack` (one per test): identity and consent on a broker of the test's own, which the
test may stop and start again on the same port (fault tests); the database is the session's,
under a database-name prefix of its own that is dropped afterwards.
`replica_stack` (one per test): two replicas each of identity and consent on the session's
broker and database (prefixes of their own), as Kubernetes runs them; the test may kill any.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from mmgen.cli import stack
from mmgen.localstack.components import start_broker
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import Launch, ManagedProcess, python_argv, spawn, start_together
from mmgen.localstack.pytest_plugin import Infra, retry_on_port_clash, unique_name


@dataclass
class RunningSystem:
    config: stack.StackConfig
    components: list[stack.Component]
    admin_email: str
    admin_password: str
    #: Where the session's SMTP sink keeps the mail the services sent.
    mail_dir: Path | None = None

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    def has(self, service: str) -> bool:
        return any(c.name == service for c in self.components)

    def log_tail(self, service: str, lines: int = 40) -> str:
        component = next(c for c in self.components if c.name == service)
        return stack.component_log_tail(component, lines)

    def pid(self, service: str) -> int:
        return next(c.pid for c in self.components if c.name == service)

    def database(self, service: str) -> str:
        """Name of the service's own database (tests read it, never write it)."""
        return self.config.database_prefix + service


@pytest.fixture(scope="package")
def system(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    services = stack.discover_services()
    assert services, "no service is installed in the workspace (mmgen.services entry points)"
    state: Path = tmp_path_factory.mktemp("system")
    admin = stack.BootstrapAdmin.fresh()
    config = stack.StackConfig(
        state_dir=state,
        topic_prefix=unique_name("sys") + ".",
        database_prefix=unique_name("sys_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        mail_port=infra.smtp_port or 2525,
        ready_timeout=60.0,
        extra_env={
            **admin.env(),
            # The first sign-in delay past a limit (2 s by default): a burst of 50 attempts on a
            # loaded 2-core machine takes longer than 2 s, and one more attempt is checked after
            # each delay; test_sign_in_throttle.py needs the whole burst within the first one.
            "IDENTITY_LOGIN_DELAY_BASE_SECONDS": "10",
            # retention expects answers from the services that run here, not all five (the
            # witness and the console hold no personal data: they answer no erasure)
            "RETENTION_SERVICES": json.dumps(
                [s.name for s in services if s.name not in ("witness", "console")]
            ),
        },
    )

    def start() -> list[stack.Component]:
        config.service_ports = {s.name: free_port() for s in services}  # fresh on a retry
        return stack.start_services(config, services)

    components = retry_on_port_clash(start)
    running = RunningSystem(config, components, admin.email, admin.password, infra.mail_dir)
    try:
        yield running
    finally:
        stack.stop_components(components)
        with MongoClient(infra.mongo_uri) as mongo:
            for service in services:
                mongo.drop_database(running.database(service.name))


@dataclass
class OwnBrokerStack(RunningSystem):
    """Services on a broker of the test's own, which it may stop and start again, empty."""

    broker: ManagedProcess | None = None

    def stop_broker(self) -> None:
        assert self.broker is not None
        self.broker.stop()

    def start_broker(self) -> None:
        """Start a broker again on the same port: empty (Tansu keeps nothing)."""
        assert self.broker is not None
        self.broker = start_broker(self.broker.host, self.broker.port, self.broker.log_path)


@pytest.fixture
def own_broker_stack(infra: Infra, tmp_path: Path) -> Iterator[OwnBrokerStack]:
    if infra.backend != "local":
        pytest.skip("restarts a local broker of its own: the local backend only")
    wanted = {"identity", "consent"}
    services = [s for s in stack.discover_services() if s.name in wanted]
    assert {s.name for s in services} == wanted, "identity and consent must be installed"
    admin = stack.BootstrapAdmin.fresh()
    broker = retry_on_port_clash(
        lambda: start_broker("127.0.0.1", free_port(), tmp_path / "logs" / "broker.log")
    )
    config = stack.StackConfig(
        state_dir=tmp_path,
        topic_prefix=unique_name("fault") + ".",
        database_prefix=unique_name("fault_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=broker.address,
        mail_port=infra.smtp_port or 2525,
        ready_timeout=60.0,
        extra_env={
            **admin.env(),
            # Heads are announced every 2 s when idle (10 s by default): the fault tests
            # measure repair after a restart, not the announcement period.
            "IDENTITY_HEADS_IDLE_INTERVAL_SECONDS": "2",
            "CONSENT_HEADS_IDLE_INTERVAL_SECONDS": "2",
        },
    )
    running = OwnBrokerStack(config, [], admin.email, admin.password, infra.mail_dir, broker=broker)

    def start() -> list[stack.Component]:
        config.service_ports = {s.name: free_port() for s in services}  # fresh on a retry
        return stack.start_services(config, services)

    try:
        running.components.extend(retry_on_port_clash(start))
        yield running
    finally:
        stack.stop_components(running.components)
        if running.broker is not None:
            running.broker.stop()
        with MongoClient(infra.mongo_uri) as mongo:
            for service in wanted:
                mongo.drop_database(running.database(service))


@dataclass
class Replica:
    service: str
    url: str
    proc: ManagedProcess

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid


@dataclass
class ReplicaStack(RunningSystem):
    """Two replicas of identity and consent; each second replica talks to the other's second."""

    replicas: list[Replica] | None = None

    def of(self, service: str) -> list[Replica]:
        return [r for r in self.replicas or [] if r.service == service]


def launch_second_replica(
    config: stack.StackConfig, service: stack.ServiceEntry, ports: dict[str, int]
) -> Launch:
    """The same service, settings and state folder (so the same development secrets) on
    another port, its JWKS and peer URLs pointing at the other second replicas."""
    second = stack.StackConfig(**{**config.__dict__, "service_ports": ports})
    env = stack.service_env(second, service.name)
    port = ports[service.name]
    argv = python_argv(
        "-m", "uvicorn", "--factory", service.factory, "--host", config.host, "--port", str(port)
    )
    log = config.logs / f"{service.name}-2.log"
    proc = spawn(f"{service.name}-2", [*argv, "--no-access-log"], config.host, port, log, env=env)
    url = f"http://{config.host}:{port}"
    return Launch(proc, lambda: httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200)


@pytest.fixture
def replica_stack(infra: Infra, tmp_path: Path) -> Iterator[ReplicaStack]:
    wanted = {"identity", "consent"}
    services = [s for s in stack.discover_services() if s.name in wanted]
    assert {s.name for s in services} == wanted, "identity and consent must be installed"
    admin = stack.BootstrapAdmin.fresh()
    config = stack.StackConfig(
        state_dir=tmp_path,
        topic_prefix=unique_name("rep") + ".",
        database_prefix=unique_name("rep_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        ready_timeout=90.0,
        extra_env={
            **admin.env(),
            "IDENTITY_HEADS_IDLE_INTERVAL_SECONDS": "2",
            "CONSENT_HEADS_IDLE_INTERVAL_SECONDS": "2",
        },
    )
    running = ReplicaStack(config, [], admin.email, admin.password, replicas=[])
    seconds: list[ManagedProcess] = []

    def start() -> list[stack.Component]:
        config.service_ports = {s.name: free_port() for s in services}  # fresh on a retry
        return stack.start_services(config, services)

    def start_seconds() -> list[ManagedProcess]:
        ports = {s.name: free_port() for s in services}
        return start_together(
            [functools.partial(launch_second_replica, config, s, ports) for s in services],
            config.ready_timeout,
        )

    try:
        # The first replicas make the development secrets; the second ones then read them.
        running.components.extend(retry_on_port_clash(start))
        seconds.extend(retry_on_port_clash(start_seconds))
        for component in running.components:
            proc = ManagedProcess(
                name=component.name,
                port=component.port,
                host=component.host,
                log_path=Path(component.log),
                popen=None,
                pid=component.pid,
            )
            running.replicas.append(  # type: ignore[union-attr]
                Replica(component.name, config.service_url(component.name), proc)
            )
        for proc in seconds:
            running.replicas.append(  # type: ignore[union-attr]
                Replica(proc.name.removesuffix("-2"), f"http://{proc.address}", proc)
            )
        yield running
    finally:
        for proc in seconds:
            proc.stop()
        stack.stop_components(running.components)
        with MongoClient(infra.mongo_uri) as mongo:
            for service in wanted:
                mongo.drop_database(running.database(service))


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[Any]:
    """Every record on `topic` right now: each partition from its start to its end offset.

    No consumer group, so reading changes nothing. Partitions are asked for by name: the local
    broker may leave an auto-created topic out of its all-topics listing.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic, p["partition"]) for d in described for p in d.get("partitions") or []
    ]
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert asyncio.get_running_loop().time() < deadline, f"{topic}: not read to its end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@pytest.fixture
def topic_records() -> Callable[[str, str], Awaitable[list[Any]]]:
    """`await topic_records(bootstrap, topic)`: every record on the topic now (`read_topic`)."""
    return read_topic

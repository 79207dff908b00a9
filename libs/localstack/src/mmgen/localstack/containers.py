"""Real Apache Kafka (KRaft) and MongoDB (single-node replica set) through testcontainers.

Only usable where a Docker engine answers; `docker_available()` says so without raising, so
callers can skip that layer cleanly with the reason.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

KAFKA_IMAGE = "confluentinc/cp-kafka:7.8.0"
MONGO_IMAGE = "mongo:8.0"


def docker_available() -> tuple[bool, str]:
    """(True, "") when a Docker engine answers a ping, else (False, why)."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        return False, f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return True, ""


@dataclass
class ContainerInfra:
    kafka_bootstrap: str
    mongo_uri: str
    stack: ExitStack

    def close(self) -> None:
        self.stack.close()


def start_containers(timeout: float = 120.0) -> ContainerInfra:
    """Start Kafka in KRaft mode and MongoDB with `--replSet rs0`, initiated as primary."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.kafka import KafkaContainer

    stack = ExitStack()
    try:
        kafka: Any = stack.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
        bootstrap = kafka.get_bootstrap_server()
        mongo: Any = stack.enter_context(
            DockerContainer(MONGO_IMAGE)
            .with_command("--replSet rs0 --bind_ip_all")
            .with_exposed_ports(27017)
        )
        host = mongo.get_container_host_ip()
        port = int(mongo.get_exposed_port(27017))
        _initiate_replica_set(mongo, timeout)
        uri = f"mongodb://{host}:{port}/?directConnection=true"
        _wait_primary(uri, timeout)
    except Exception:
        stack.close()
        raise
    return ContainerInfra(kafka_bootstrap=bootstrap, mongo_uri=uri, stack=stack)


def _initiate_replica_set(mongo: Any, timeout: float) -> None:
    script = "rs.initiate({_id:'rs0',members:[{_id:0,host:'localhost:27017'}]})"
    deadline = time.monotonic() + timeout
    while True:
        code, _ = mongo.exec(["mongosh", "--quiet", "--eval", script])
        if code == 0 or time.monotonic() > deadline:
            return
        time.sleep(1)


def _wait_primary(uri: str, timeout: float) -> None:
    from pymongo import MongoClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
        with client:
            try:
                if client.admin.command("hello").get("isWritablePrimary"):
                    return
            except Exception:  # noqa: BLE001, S110 - not primary yet
                pass
        time.sleep(0.5)
    raise TimeoutError(f"MongoDB at {uri} did not become primary within {timeout} s")

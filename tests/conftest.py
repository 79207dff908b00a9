"""System tests: every workspace service as its own process, over HTTP and Kafka.

The services run against the session's broker and database (the same launcher as `mmgen up`),
isolated from other tests by a topic prefix and a database-name prefix.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmgen.cli import stack
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra, unique_name


@dataclass(frozen=True)
class RunningSystem:
    config: stack.StackConfig
    components: list[stack.Component]
    admin_email: str
    admin_password: str

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    def has(self, service: str) -> bool:
        return any(c.name == service for c in self.components)

    def log_tail(self, service: str, lines: int = 40) -> str:
        component = next(c for c in self.components if c.name == service)
        return stack.component_log_tail(component, lines)


@pytest.fixture(scope="session")
def system(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    services = stack.discover_services()
    assert services, "no service is installed in the workspace (mmgen.services entry points)"
    state: Path = tmp_path_factory.mktemp("system")
    admin_email = f"admin-{secrets.token_hex(4)}@example.test"
    admin_password = secrets.token_urlsafe(18)
    config = stack.StackConfig(
        state_dir=state,
        service_ports={s.name: free_port() for s in services},
        topic_prefix=unique_name("sys") + ".",
        database_prefix=unique_name("sys_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        ready_timeout=60.0,
        extra_env={
            "IDENTITY_BOOTSTRAP_ADMIN_EMAIL": admin_email,
            "IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
        },
    )
    components = stack.start_services(config, services)
    try:
        yield RunningSystem(config, components, admin_email, admin_password)
    finally:
        stack.stop_components(components)

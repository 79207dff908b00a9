"""The local stack as `mmgen up` runs it: infrastructure, then every workspace service.

Broker and database start together, then all services together, each waiting for its own
readiness: a start takes as long as the slowest component, not the sum of all of them.
What was started is recorded in `<state>/stack.json` (name, port, pid, argv, log) as each
component is spawned, so `mmgen down` stops exactly those processes — by recorded pid, checked
against the recorded command line so a recycled pid is never signalled — even after the
`up` that started them crashed half-way.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast

import httpx

from mmgen.cli.local_witness import with_local_witness
from mmgen.localstack.components import (
    BROKER,
    DATABASE,
    MAIL,
    kafka_metadata_ok,
    launch_broker,
    launch_database,
    launch_mail_sink,
    mongo_primary_ok,
    mongo_uri,
)
from mmgen.localstack.errors import LocalStackError
from mmgen.localstack.mailsink import smtp_ready
from mmgen.localstack.ports import ensure_port_free
from mmgen.localstack.processes import (
    Launch,
    ManagedProcess,
    pid_alive,
    python_argv,
    spawn,
    start_together,
    stop_pids,
    tail,
)

SERVICE_ENTRY_POINTS = "mmgen.services"
DEFAULT_SERVICE_PORTS = {
    "identity": 8001,
    "projects": 8002,
    "profiles": 8003,
    "consent": 8004,
    "retention": 8005,
    "console": 8006,
    "witness": 8009,
}
RECORD_FILE = "stack.json"


class StackAlreadyRunningError(LocalStackError):
    pass


class PortConflictError(LocalStackError):
    """Two components of one stack are configured on the same port."""


@dataclass(frozen=True)
class BootstrapAdmin:
    """The first admin of a stack started for tests or benches: identity creates the account
    at start from `IDENTITY_BOOTSTRAP_ADMIN_EMAIL` / `_PASSWORD` (idempotently)."""

    email: str
    password: str

    @classmethod
    def fresh(cls) -> BootstrapAdmin:
        return cls(f"admin-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18))

    def env(self, *, mail_requests_per_address: int = 100_000) -> dict[str, str]:
        """The admin's variables, and a per-address limit on mail requests (registrations
        and resets) that local clients do not reach: they all come from 127.0.0.1."""
        return {
            "IDENTITY_BOOTSTRAP_ADMIN_EMAIL": self.email,
            "IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": self.password,
            "IDENTITY_MAIL_REQUESTS_MAX_PER_ADDRESS": str(mail_requests_per_address),
        }


@dataclass(frozen=True)
class ServiceEntry:
    """A service of the workspace: its name and the ASGI app factory uvicorn runs."""

    name: str
    factory: str


def discover_services() -> list[ServiceEntry]:
    """Services installed in the workspace, known ones in the order of their default ports.

    They start together; none needs another to be ready first (the others fetch identity's
    JWKS when a token first arrives, not at start-up).

    Each service member declares `[project.entry-points."mmgen.services"] <name> =
    "<module>:<app factory>"`, so a new service is started without touching the CLI.
    """
    found = [ServiceEntry(ep.name, ep.value) for ep in entry_points(group=SERVICE_ENTRY_POINTS)]
    order = list(DEFAULT_SERVICE_PORTS)
    return sorted(found, key=lambda s: (order.index(s.name) if s.name in order else 99, s.name))


@dataclass
class StackConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    broker_port: int = 9092
    database_port: int = 27017
    #: The local SMTP sink (`mmgen mail` reads what it got); tests point it at their own sink.
    mail_port: int = 2525
    service_ports: dict[str, int] = field(default_factory=dict)
    with_services: bool = True
    ready_timeout: float = 30.0
    # System tests run services against the session's broker and database, isolated by
    # prefixes; `mmgen up` leaves these empty and starts its own infrastructure.
    topic_prefix: str = ""
    database_prefix: str = ""
    external_mongo_uri: str | None = None
    external_kafka_bootstrap: str | None = None
    #: Further variables for every service (system tests set a bootstrap admin this way).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    @property
    def record_path(self) -> Path:
        return self.state_dir / RECORD_FILE

    def port_of(self, service: str) -> int:
        if service in self.service_ports:
            return self.service_ports[service]
        if service in DEFAULT_SERVICE_PORTS:
            return DEFAULT_SERVICE_PORTS[service]
        raise LocalStackError(f"{service}: no port configured (use --port {service}=PORT)")

    @property
    def mongo_uri(self) -> str:
        return self.external_mongo_uri or mongo_uri(self.host, self.database_port)

    @property
    def kafka_bootstrap(self) -> str:
        return self.external_kafka_bootstrap or f"{self.host}:{self.broker_port}"

    def service_url(self, service: str) -> str:
        return f"http://{self.host}:{self.port_of(service)}"


@dataclass
class Component:
    """One recorded process of the stack."""

    name: str
    kind: str  # "broker" | "database" | "mail" | "service"
    host: str
    port: int
    pid: int
    argv: list[str]
    log: str
    started_at: float

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def is_ours(self) -> bool:
        """The pid is alive and still runs the command we recorded for it."""
        if not pid_alive(self.pid):
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return [part.decode(errors="replace") for part in cmdline if part] == self.argv

    def probe(self) -> bool:
        """Ready by the component's own protocol (or `/readyz` for a service)."""
        try:
            if self.kind == BROKER:
                return kafka_metadata_ok(self.host, self.port, timeout=1.0)
            if self.kind == DATABASE:
                return mongo_primary_ok(self.host, self.port, timeout=1.0)
            if self.kind == MAIL:
                return smtp_ready(self.host, self.port, timeout=1.0)
            return httpx.get(f"http://{self.address}/readyz", timeout=2.0).status_code == 200
        except Exception:  # noqa: BLE001 - any failure to answer is "not ready"
            return False


class StackRecord:
    """The persisted list of what `up` started, written as each component comes up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Component]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        return [Component(**item) for item in raw.get("components", [])]

    def save(self, components: list[Component]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"components": [asdict(c) for c in components]}, indent=2))
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def running_components(config: StackConfig) -> list[Component]:
    return [c for c in StackRecord(config.record_path).load() if c.is_ours()]


def service_env(config: StackConfig, service: str) -> dict[str, str]:
    """Settings of one service under `mmgen up`, by its own env prefix (`IDENTITY_…`)."""
    prefix = service.upper() + "_"
    values = {
        "ENVIRONMENT": "development",
        "HOST": config.host,
        "PORT": str(config.port_of(service)),
        "MONGO_URI": config.mongo_uri,
        "MONGO_DATABASE": config.database_prefix + service,
        "KAFKA_BOOTSTRAP": config.kafka_bootstrap,
        "TOPIC_PREFIX": config.topic_prefix,
        "JWKS_URL": f"{config.service_url('identity')}/.well-known/jwks.json",
        # Retention signs the erasure commands every service obeys (mmgen.runtime.commands).
        "RETENTION_JWKS_URL": f"{config.service_url('retention')}/.well-known/jwks.json",
        "STATE_DIR": str(config.state_dir.resolve()),
        # Mail goes to the local sink (no TLS, no login: it listens on loopback only).
        "SMTP_HOST": config.host,
        "SMTP_PORT": str(config.mail_port),
        "SMTP_STARTTLS": "false",
    }
    env = {prefix + key: value for key, value in values.items()}
    for other in DEFAULT_SERVICE_PORTS:
        env[f"MMGEN_{other.upper()}_URL"] = config.service_url(other)
    env["OTEL_SERVICE_NAME"] = service
    env.update(config.extra_env)
    return env


def launch_service(config: StackConfig, service: ServiceEntry) -> Launch:
    """Spawn one service under uvicorn; it is ready when its `/readyz` answers 200."""
    port = config.port_of(service.name)
    argv = python_argv(
        "-m",
        "uvicorn",
        "--factory",
        service.factory,
        "--host",
        config.host,
        "--port",
        str(port),
        "--no-access-log",
        # uvicorn would believe X-Forwarded-For from any loopback peer; the services resolve
        # the client address themselves, from their trusted_proxies setting only.
        "--no-proxy-headers",
    )
    proc = spawn(
        service.name,
        argv,
        config.host,
        port,
        config.logs / f"{service.name}.log",
        env=service_env(config, service.name),
    )
    url = f"http://{config.host}:{port}/readyz"
    return Launch(proc, lambda: httpx.get(url, timeout=2.0).status_code == 200)


def _as_component(proc: ManagedProcess, kind: str) -> Component:
    assert proc.popen is not None
    return Component(
        name=proc.name,
        kind=kind,
        host=proc.host,
        port=proc.port,
        pid=proc.popen.pid,
        argv=[str(a) for a in cast("Sequence[object]", proc.popen.args)],
        log=str(proc.log_path),
        started_at=time.time(),
    )


def planned_ports(config: StackConfig, services: list[ServiceEntry]) -> list[tuple[str, int]]:
    """(component, port) of everything `up` would start; two on one port are refused.

    Checked before anything starts: otherwise the second would find the port taken by the
    first (our own process) only after the first had been started.
    """
    planned = [
        (BROKER, config.broker_port),
        (DATABASE, config.database_port),
        (MAIL, config.mail_port),
    ]
    planned += [(s.name, config.port_of(s.name)) for s in services]
    owner: dict[int, str] = {}
    for name, port in planned:
        if port in owner:
            raise PortConflictError(
                f"{owner[port]} and {name} are both configured on port {port}: "
                "give each component its own port"
            )
        owner[port] = name
    return planned


def up(
    config: StackConfig, on_started: Callable[[Component], None] | None = None
) -> list[Component]:
    """Start broker and database, then every service; on any failure stop all and raise.

    Every port is checked before anything starts, so a taken port fails fast and leaves
    nothing behind. A service that fails stops the others, ready or still starting.
    """
    if running_components(config):
        raise StackAlreadyRunningError(
            f"a stack recorded in {config.record_path} is already running "
            "(see `mmgen status`, stop it with `mmgen down`)"
        )
    services = discover_services() if config.with_services else []
    config = with_local_witness(config, services)
    for name, port in planned_ports(config, services):
        ensure_port_free(name, config.host, port)

    started: list[Component] = []
    try:
        _start_recorded(
            config,
            [
                lambda: launch_broker(config.host, config.broker_port, config.logs / "broker.log"),
                lambda: launch_database(
                    config.host,
                    config.database_port,
                    config.state_dir / "database",
                    config.logs / "database.log",
                    sync_on_commit=True,
                ),
                lambda: launch_mail_sink(
                    config.host, config.mail_port, config.mail_dir, config.logs / "mail.log"
                ),
            ],
            started,
            on_started,
        )
        _start_recorded(config, _service_launchers(config, services), started, on_started)
    except BaseException:
        stop_components(started)
        StackRecord(config.record_path).clear()
        raise
    return started


def start_services(
    config: StackConfig,
    services: list[ServiceEntry],
    on_started: Callable[[Component], None] | None = None,
) -> list[Component]:
    """Start services only, all at once, against infrastructure that already runs (tests)."""
    config = with_local_witness(config, services)
    started: list[Component] = []
    try:
        _start_recorded(config, _service_launchers(config, services), started, on_started)
    except BaseException:
        stop_components(started)
        StackRecord(config.record_path).clear()
        raise
    return started


def _service_launchers(
    config: StackConfig, services: list[ServiceEntry]
) -> list[Callable[[], Launch]]:
    return [functools.partial(launch_service, config, service) for service in services]


def _start_recorded(
    config: StackConfig,
    launchers: list[Callable[[], Launch]],
    started: list[Component],
    on_started: Callable[[Component], None] | None,
) -> None:
    """Start a group of components concurrently (each waits for its own readiness).

    Each is recorded the moment it is spawned, before it is ready: should this process die
    mid-start, `mmgen down` still finds and stops it. `on_started` is told as each one
    becomes ready. On failure `start_together` has killed this group; `started` still lists
    them, so the caller's rollback also stops whatever earlier groups started.
    """
    record = StackRecord(config.record_path)
    by_pid: dict[int, Component] = {}

    def spawned(proc: ManagedProcess) -> None:
        component = _as_component(proc, _kind(proc.name))
        by_pid[component.pid] = component
        started.append(component)
        record.save(started)

    def ready(proc: ManagedProcess) -> None:
        if on_started:
            on_started(by_pid[_pid(proc)])

    start_together(
        launchers,
        config.ready_timeout,
        interval=0.1,
        on_spawned=spawned,
        on_ready=ready,
    )


def _kind(name: str) -> str:
    return name if name in (BROKER, DATABASE, MAIL) else "service"


def _pid(proc: ManagedProcess) -> int:
    assert proc.popen is not None
    return proc.popen.pid


def stop_components(components: list[Component], timeout: float = 15.0) -> list[Component]:
    """Stop the services (all at once), then the infrastructure they use; returns what was
    stopped, services first."""
    ours = [c for c in reversed(components) if c.is_ours()]
    services = [c for c in ours if c.kind == "service"]
    infrastructure = [c for c in ours if c.kind != "service"]
    for group in (services, infrastructure):
        stop_pids([c.pid for c in group], timeout=timeout)
    return services + infrastructure


def down(config: StackConfig) -> list[Component]:
    record = StackRecord(config.record_path)
    stopped = stop_components(record.load())
    record.clear()
    return stopped


def reset(config: StackConfig) -> None:
    """Wipe local state (database files, logs, generated development secrets)."""
    if running_components(config):
        raise StackAlreadyRunningError("the stack is running: `mmgen down` first, then reset")
    if config.state_dir.exists():
        shutil.rmtree(config.state_dir)


def component_log_tail(component: Component, lines: int = 10) -> str:
    return tail(Path(component.log), lines)


def default_state_dir() -> Path:
    return Path(os.getcwd()) / ".mmgen"

"""Fail closed (issue 14): no service serves with public secrets, and the public ones open nothing.

- Every installed service, started as `mmgen up` starts it (`stack.launch_service`: uvicorn,
  the stack's environment, a state folder) but bound to a non-loopback address and given no
  secret, exits without serving, naming each secret variable it lacks; so does each started as
  its container starts it (the image's entrypoint and command) with no environment named.
  Outside the local stack (development, loopback, a state folder) a `dev_secret` default is
  public: anyone can compute the keys derived from it.
- The `admin-cli` client secret an outsider computes from the public default of identity's
  `service_credentials_key` gets 401 at the running identity, while the one the local stack
  generated works.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mmgen.cli import stack
from mmgen.identity.adapters.hashing import service_secret
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import ManagedProcess, python_argv, spawn, stop_pids
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform import dev_secret, key_bytes
from mmgen.platform.service_tokens import development_client_secret

#: Every interface: not loopback, so development secrets are not allowed.
PUBLIC_HOST = "0.0.0.0"  # noqa: S104 - the point of the test
#: The secret settings of each service whose default is a public `dev_secret`.
SECRETS = {
    "identity": {
        "IDENTITY_MASTER_KEY",
        "IDENTITY_BLIND_INDEX_KEY",
        "IDENTITY_SERVICE_CREDENTIALS_KEY",
    },
    "projects": {"PROJECTS_MASTER_KEY"},
    "profiles": {"PROFILES_MASTER_KEY"},
    "consent": {"CONSENT_MASTER_KEY", "CONSENT_AUDIT_SIGNING_KEY"},
    "retention": {"RETENTION_MASTER_KEY", "RETENTION_RECEIPT_SIGNING_KEY"},
    "console": {"CONSOLE_MASTER_KEY"},
    "witness": {"WITNESS_SIGNING_KEY"},
}
EXIT_DEADLINE_S = 60.0
ENTRYPOINT = Path(__file__).resolve().parents[1] / "deploy" / "docker" / "entrypoint.py"


def exit_code(proc: ManagedProcess, deadline: float) -> int | None:
    assert proc.popen is not None
    try:
        return proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None


def assert_each_refuses(launched: dict[str, ManagedProcess]) -> None:
    """Each process exits without serving, its log naming every secret variable it lacks."""
    try:
        deadline = time.monotonic() + EXIT_DEADLINE_S
        codes = {name: exit_code(proc, deadline) for name, proc in launched.items()}
    finally:
        stop_pids([p.popen.pid for p in launched.values() if p.popen and p.popen.poll() is None])
    for name, proc in launched.items():
        log = proc.log_path.read_text(errors="replace")
        assert codes[name] not in (None, 0), f"{name} did not refuse to start:\n{log[-2000:]}"
        assert "refusing to start" in log, f"{name}:\n{log[-2000:]}"
        for variable in SECRETS[name]:
            assert variable in log, f"{name} did not name {variable}:\n{log[-2000:]}"
        assert "Uvicorn running" not in log, name


def stack_config(infra: Infra, state_dir: Path) -> stack.StackConfig:
    services = stack.discover_services()
    # A new service names its secrets here, or this fails.
    assert {s.name for s in services} == set(SECRETS)
    return stack.StackConfig(
        state_dir=state_dir,
        host=PUBLIC_HOST,
        service_ports={s.name: free_port() for s in services},
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=f"closed{time.time_ns()}.",
        database_prefix=f"closed{time.time_ns()}_",
    )


def test_every_service_as_mmgen_up_starts_it_but_off_loopback_refuses_to_start(
    infra: Infra, tmp_path: Path
) -> None:
    config = stack_config(infra, tmp_path / "state")
    assert_each_refuses(
        {s.name: stack.launch_service(config, s).proc for s in stack.discover_services()}
    )
    # Nothing was generated for them: outside the local stack no secret is made up.
    generated = config.state_dir / "secrets"
    assert not generated.exists() or not any(generated.iterdir())


def test_every_service_as_its_container_starts_it_without_secrets_refuses_to_start(
    infra: Infra, tmp_path: Path
) -> None:
    """The image's entrypoint and command (deploy/docker), given the connections only: no
    environment named (so the settings' default, development), no state folder, no secret."""
    config = stack_config(infra, tmp_path / "state")
    launched = {}
    for service in stack.discover_services():
        prefix, port = service.name.upper() + "_", config.port_of(service.name)
        env = {
            key: value
            for key, value in stack.service_env(config, service.name).items()
            if key not in (prefix + "ENVIRONMENT", prefix + "STATE_DIR")
        }
        env |= {"PATH": os.environ["PATH"], "PORT": str(port), "FORWARDED_ALLOW_IPS": "127.0.0.1"}
        # A container starts with its own environment only: `env -i`, not this process's.
        command = [
            "env",
            "-i",
            *(f"{key}={value}" for key, value in env.items()),
            *python_argv(str(ENTRYPOINT)),
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            service.factory,
            "--host",
            PUBLIC_HOST,
            "--port",
            str(port),
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
            "--no-server-header",
            "--no-access-log",
        ]
        log = tmp_path / "logs" / f"{service.name}.log"
        launched[service.name] = spawn(service.name, command, PUBLIC_HOST, port, log, env=env)
    assert_each_refuses(launched)


def test_the_admin_cli_secret_derived_from_the_public_default_gets_401(system: Any) -> None:
    identity = system.url("identity")
    public_key = key_bytes(dev_secret("identity-service-credentials-key"))
    guessed = service_secret(public_key, "admin-cli")
    _, generated = development_client_secret(system.config.state_dir, "admin-cli")
    assert guessed != generated
    with httpx.Client(timeout=15) as http:
        refused = http.post(
            f"{identity}/auth/service-token", json={"service": "admin-cli", "secret": guessed}
        )
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "access_token" not in refused.json()
        # The same request with the secret the local stack generated is what gets a token.
        issued = http.post(
            f"{identity}/auth/service-token", json={"service": "admin-cli", "secret": generated}
        )
        assert issued.status_code == 200, issued.text

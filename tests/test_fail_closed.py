"""Fail closed (issue 14): no service serves with public secrets, and the public ones open nothing.

- Every installed service, started as `mmgen up` starts it (`stack.launch_service`: uvicorn,
  the stack's environment, a state folder) but bound to a non-loopback address and given no
  secret, exits without serving, naming each secret variable it lacks. Outside the local stack
  (development, loopback, a state folder) a `dev_secret` default is public: anyone can compute
  the keys derived from it.
- The `admin-cli` client secret an outsider computes from the public default of identity's
  `service_credentials_key` gets 401 at the running identity, while the one the local stack
  generated works.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from mmgen.cli import stack
from mmgen.identity.adapters.hashing import service_secret
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import ManagedProcess, stop_pids
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


def exit_code(proc: ManagedProcess, deadline: float) -> int | None:
    assert proc.popen is not None
    try:
        return proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return None


def test_every_service_off_loopback_without_secrets_refuses_to_start(
    infra: Infra, tmp_path: Path
) -> None:
    services = stack.discover_services()
    # A new service names its secrets here, or this fails.
    assert {s.name for s in services} == set(SECRETS)
    config = stack.StackConfig(
        state_dir=tmp_path / "state",
        host=PUBLIC_HOST,
        service_ports={s.name: free_port() for s in services},
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=f"closed{time.time_ns()}.",
        database_prefix=f"closed{time.time_ns()}_",
    )
    launched = {s.name: stack.launch_service(config, s).proc for s in services}
    try:
        deadline = time.monotonic() + EXIT_DEADLINE_S
        codes = {name: exit_code(proc, deadline) for name, proc in launched.items()}
    finally:
        stop_pids([p.popen.pid for p in launched.values() if p.popen and p.popen.poll() is None])
    for name, proc in launched.items():
        log = proc.log_path.read_text(errors="replace")
        assert codes[name] not in (None, 0), f"{name} did not refuse to start:\n{log[-2000:]}"
        assert "refusing to start" in log, f"{name}:\n{log[-2000:]}"
        for variable in SECRETS.get(name, set()):
            assert variable in log, f"{name} did not name {variable}:\n{log[-2000:]}"
        assert "Uvicorn running" not in log, name
    # Nothing was generated for them: outside the local stack no secret is made up.
    assert not (config.state_dir / "secrets").exists() or not any(
        (config.state_dir / "secrets").iterdir()
    )


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

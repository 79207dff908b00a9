"""identity as `mmgen up` runs it: a uvicorn process from the `mmgen.services` entry point with
`service_env`, development secrets generated under the state folder, /readyz green, OpenAPI
served, and `mmgen admin create` / `rotate-keys` working against it."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from mmgen.cli import stack
from mmgen.localstack.ports import free_port
from mmgen.platform.service_tokens import ServiceTokenProvider, development_client_secret
from services.identity.tests.identity_kit import passphrase, unique_email

MMGEN = str(Path(sys.executable).with_name("mmgen"))


def test_identity_under_the_stack_launcher(infra, tmp_path: Path) -> None:
    [entry] = [s for s in stack.discover_services() if s.name == "identity"]
    assert entry.factory == "mmgen.identity.entrypoints.app:create_app"
    config = stack.StackConfig(
        state_dir=tmp_path / "state",
        service_ports={"identity": free_port()},
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        database_prefix=f"t{uuid.uuid4().hex[:8]}_",
        ready_timeout=60,
    )
    components = stack.start_services(config, [entry])
    try:
        base = config.service_url("identity")
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert set(checks) == {"database", "broker", "relay", "inbox", "projections"}
        spec = httpx.get(f"{base}/openapi.json", timeout=5).json()
        assert "/auth/token" in spec["paths"] and spec["info"]["title"] == "identity"

        # Development secrets were generated under the state folder, not taken from code.
        secrets_dir = config.state_dir / "secrets"
        generated = json.loads((secrets_dir / "identity.json").read_text())
        assert {"master_key", "blind_index_key", "service_credentials_key"} <= set(generated)
        cli_file = secrets_dir / "identity-service-clients.json"
        assert stat.S_IMODE(cli_file.stat().st_mode) == 0o600
        # Another service gets its token with what identity left for it there.
        url, secret = development_client_secret(config.state_dir, "retention")
        assert url == base

        async def fetch() -> str:
            provider = ServiceTokenProvider(url, "retention", secret)
            try:
                first = await provider.token()
                assert await provider.token() == first  # cached
                return first
            finally:
                await provider.aclose()

        token = asyncio.run(fetch())
        footprint = httpx.get(
            f"{base}/internal/subjects/{uuid.uuid4()}/footprint",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert footprint.status_code == 200, footprint.text

        email, password = unique_email("root"), passphrase()
        created = subprocess.run(
            [MMGEN, "admin", "create", "--state-dir", str(config.state_dir),
             "--email", email, "--password", password],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        assert "admin created" in created.stdout
        login = httpx.post(
            f"{base}/auth/token", json={"email": email, "password": password}, timeout=10
        )
        assert login.status_code == 200, login.text
        kid_before = httpx.get(f"{base}/.well-known/jwks.json", timeout=5).json()["keys"][0]["kid"]

        rotated = subprocess.run(
            [MMGEN, "admin", "rotate-keys", "--state-dir", str(config.state_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        kids = [
            k["kid"] for k in httpx.get(f"{base}/.well-known/jwks.json", timeout=5).json()["keys"]
        ]
        # Published at once, signing only after the publish delay: the old key signs meanwhile.
        assert len(kids) == 2 and kids[0] == kid_before

        weak = subprocess.run(
            [MMGEN, "admin", "create", "--state-dir", str(config.state_dir),
             "--email", unique_email(), "--password", "password"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert weak.returncode == 1 and "password" in weak.stderr.lower()
    finally:
        stack.stop_components(components)
        stack.StackRecord(config.record_path).clear()


def test_admin_cli_without_a_stack_says_what_to_do(tmp_path: Path) -> None:
    result = subprocess.run(
        [MMGEN, "admin", "create", "--state-dir", str(tmp_path), "--email", "a@example.org",
         "--password", passphrase()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "mmgen up" in result.stderr


def test_off_loopback_without_secrets_identity_refuses_to_start(infra, tmp_path: Path) -> None:
    """The launcher's settings, but bound to every interface: development secrets no longer
    count as the local stack's, so identity exits naming the variables, having bound nothing."""
    config = stack.StackConfig(
        state_dir=tmp_path / "state",
        host="0.0.0.0",  # noqa: S104 - what a container would bind to
        service_ports={"identity": free_port()},
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("IDENTITY_", "MMGEN_SECRETS_DIR"))
    }
    env.update(stack.service_env(config, "identity"))
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "mmgen.identity.entrypoints.app:create_app",
         "--host", "127.0.0.1", "--port", str(free_port()), "--no-proxy-headers"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert started.returncode != 0
    for variable in ("IDENTITY_MASTER_KEY", "IDENTITY_BLIND_INDEX_KEY"):
        assert variable in started.stderr, started.stderr[-2000:]
    assert "IDENTITY_SERVICE_CREDENTIALS_KEY" in started.stderr
    assert not (config.state_dir / "secrets" / "identity.json").exists()

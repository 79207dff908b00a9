"""The identity app factory: `create_app()` for `mmgen up`/uvicorn, `build_app(settings)` for tests.

The lifespan connects the database, loads the signing keys, starts the relay and the
`retention.commands` consumer, creates the first admin from the settings if asked, and — under
`mmgen up` (development with a state folder) — leaves the service clients' secrets in the state
folder for the other services and `mmgen admin`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mmgen.identity import __version__
from mmgen.identity.adapters.denials import EventStoreDenialRecorder
from mmgen.identity.adapters.hashing import service_secret
from mmgen.identity.adapters.read_models import AccountDenylist
from mmgen.identity.bootstrap import Identity, bootstrap
from mmgen.identity.entrypoints.api.problems import register_problems
from mmgen.identity.entrypoints.api.routes import ROUTERS
from mmgen.identity.entrypoints.messaging import Messaging
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import (
    ConfigurationError,
    Environment,
    PlatformApp,
    ReadinessCheck,
    kafka_check,
)
from mmgen.platform import create_app as platform_app
from mmgen.platform.auth import TokenVerifier
from mmgen.platform.service_tokens import CLIENTS_FILE

log = logging.getLogger(__name__)


def create_app() -> PlatformApp:
    """Zero-argument factory (`uvicorn --factory`, the `mmgen.services` entry point)."""
    return build_app(IdentitySettings())


def build_app(settings: IdentitySettings) -> PlatformApp:
    # identity verifies from its own key ring: never from a JWKS URL (`mmgen up` sets one for all).
    settings = settings.model_copy(update={"jwks_url": None})
    registry = CollectorRegistry(auto_describe=True)
    holder: dict[str, Any] = {}

    async def database_ready() -> None:
        identity: Identity = holder["identity"]
        await identity.client.admin.command("ping")

    async def relay_ready() -> bool:
        messaging: Messaging | None = holder.get("messaging")
        return messaging is not None and await messaging.relay_ready()

    async def consumers_ready() -> bool:
        messaging: Messaging | None = holder.get("messaging")
        return messaging is not None and await messaging.consumers_ready()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        identity = await bootstrap(settings)
        holder["identity"] = identity
        messaging = Messaging(identity, registry)
        try:
            app.state.token_verifier = TokenVerifier(
                identity.adapters.keyring,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                leeway=settings.jwt_leeway_seconds,
                denylist=AccountDenylist(identity.adapters.accounts),
            )
            app.state.denial_recorder = EventStoreDenialRecorder(identity.adapters.repository)
            await _bootstrap_admin(identity, settings)
            await messaging.start()
            holder["messaging"] = messaging
            app.state.identity = identity
            app.state.messaging = messaging
            _write_cli_secret(settings, identity)
            yield
        finally:
            app.state.identity = None
            holder.pop("messaging", None)
            await messaging.stop()
            await identity.close()

    app = platform_app(
        settings,
        title="identity",
        version=__version__,
        description="Accounts, passwords and tokens of the Multimedia Gen platform.",
        routers=list(ROUTERS),
        readiness_checks=[
            ReadinessCheck("database", database_ready),
            kafka_check(settings.kafka_bootstrap),
            ReadinessCheck("relay", relay_ready),
            ReadinessCheck("consumers", consumers_ready),
        ],
        lifespan=lifespan,
        metrics_registry=registry,
    )
    register_problems(app)
    return app


async def _bootstrap_admin(identity: Identity, settings: IdentitySettings) -> None:
    """The first admin from `IDENTITY_BOOTSTRAP_ADMIN_EMAIL`/`_PASSWORD` (idempotent)."""
    email, password = settings.bootstrap_admin_email, settings.bootstrap_admin_password
    if not email and not password:
        return
    if not email or password is None:
        raise ConfigurationError(
            "set both IDENTITY_BOOTSTRAP_ADMIN_EMAIL and IDENTITY_BOOTSTRAP_ADMIN_PASSWORD"
        )
    try:
        await identity.accounts.ensure_admin(
            email, password.get_secret_value(), settings.bootstrap_admin_name, source="bootstrap"
        )
    except ValueError as exc:  # the password policy or email check refused it
        raise ConfigurationError(f"the bootstrap admin cannot be created: {exc}") from exc


def _write_cli_secret(settings: IdentitySettings, identity: Identity) -> None:
    """Under `mmgen up`: every service client's secret in `<state>/secrets/` (0600), for the
    other services (`mmgen.platform.service_tokens`) and `mmgen admin` (client `admin-cli`)."""
    if settings.environment is not Environment.development or settings.state_dir is None:
        return
    folder = Path(settings.state_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / CLIENTS_FILE
    key = identity.adapters.service_credentials_key
    content = {
        "identity_url": f"http://{settings.host}:{settings.port}",
        "clients": {name: service_secret(key, name) for name in settings.service_clients},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    tmp.replace(path)

"""Fixtures of the consent service's tests: signed tokens, the app with its lifespan, a client.

API tests run the real app in-process through httpx, with its lifespan (topics, relay,
consumers) against the session's real database and broker, in a database and under a topic
prefix of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mmgen.consent.bootstrap import bootstrap
from mmgen.consent.entrypoints.app import build_app
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import PlatformApp
from mmgen.platform.auth import SigningKey, StaticKeySet, issue_token


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.generate()


@dataclass
class Tokens:
    """Issues tokens as identity would (EdDSA, kid), for any subject and role."""

    key: SigningKey

    def __call__(self, role: str = "client", subject: str | None = None) -> tuple[str, str]:
        sub = subject or str(uuid.uuid4())
        return sub, issue_token(self.key, subject=sub, role=role)

    def headers(
        self, role: str = "client", subject: str | None = None
    ) -> tuple[str, dict[str, str]]:
        sub, token = self(role, subject)
        return sub, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(signing_key: SigningKey) -> Tokens:
    return Tokens(signing_key)


@pytest.fixture
def settings(
    mongo_uri: str, mongo_db: Any, kafka_bootstrap: str, topic_prefix: str
) -> ConsentSettings:
    return ConsentSettings(
        environment="test",
        mongo_uri=mongo_uri,
        mongo_database=mongo_db.name,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwks_url=None,
        consumer_session_timeout_ms=2000,
        consumer_heartbeat_interval_ms=500,
        relay_lease_ttl_seconds=3.0,
        log_json=False,
        tracking_max_events_per_subject=5,
    )


@pytest.fixture
def make_app(settings: ConsentSettings, signing_key: SigningKey) -> Callable[..., PlatformApp]:
    def make(*, audit: bool = False, **overrides: Any) -> PlatformApp:
        """The app; `audit=True` also runs the audit component (slower start: its own group)."""
        effective = settings.model_copy(update=overrides) if overrides else settings
        container = bootstrap(effective, with_audit=audit)
        return build_app(effective, key_set=StaticKeySet.of(signing_key), consent=container)

    return make


@pytest.fixture
async def app(
    make_app: Callable[..., PlatformApp], request: pytest.FixtureRequest
) -> AsyncIterator[PlatformApp]:
    """The app in its lifespan; mark a test `@pytest.mark.with_audit` to run the audit log too."""
    app = make_app(audit=request.node.get_closest_marker("with_audit") is not None)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: PlatformApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://consent.test") as c:
        yield c


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "with_audit: run the consent app with its audit component")

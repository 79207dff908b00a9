"""Test helpers for identity (and for system tests driving it): settings on a given broker and
database, the app run in-process (httpx + its lifespan), account helpers, problem assertions."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.identity.adapters.hashing import service_secret
from mmgen.identity.bootstrap import Identity
from mmgen.identity.domain.events import UserRole
from mmgen.identity.entrypoints.app import build_app
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import PlatformApp

WORDS = (
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "glacier",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "prairie",
    "quartz",
    "raven",
    "saffron",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "xylem",
    "yonder",
    "zephyr",
)


def passphrase() -> str:
    """A random four-word passphrase (well above the length floor, on no blocklist)."""
    return " ".join(secrets.choice(WORDS) for _ in range(4)) + f" {secrets.randbelow(10_000)}"


def unique_email(tag: str = "user") -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.org"


def make_settings(infra: Any, **overrides: Any) -> IdentitySettings:
    """Settings for one app under test: its own database and topic prefix, fast consumer joins."""
    values: dict[str, Any] = {
        "environment": "test",
        "mongo_uri": infra.mongo_uri,
        "mongo_database": f"t_identity_{uuid.uuid4().hex[:10]}",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "consumer_session_timeout_ms": 2000,
        "consumer_heartbeat_interval_ms": 500,
        "relay_idle_wait_seconds": 0.2,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return IdentitySettings(**values)


@dataclass
class Running:
    """An identity app running in this process, and an httpx client on it."""

    app: PlatformApp
    client: httpx.AsyncClient
    settings: IdentitySettings

    @property
    def identity(self) -> Identity:
        identity: Identity = self.app.state.identity
        return identity

    # --- helpers used by many tests ----------------------------------------------------------

    async def register(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "email": unique_email(),
            "password": passphrase(),
            "name": "Ada Lovelace",
            "role": "client",
        }
        body.update(overrides)
        response = await self.client.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        return {**body, "user_id": response.json()["user_id"]}

    async def login(self, email: str, password: str) -> dict[str, Any]:
        response = await self.client.post(
            "/auth/token", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def user_with_token(self, **overrides: Any) -> dict[str, Any]:
        user = await self.register(**overrides)
        tokens = await self.login(user["email"], user["password"])
        return {**user, **tokens, "auth": {"Authorization": f"Bearer {tokens['access_token']}"}}

    async def staff(self, role: UserRole = "staff") -> dict[str, Any]:
        """A staff/compliance/admin account (created through the use case) and its token."""
        email, password = unique_email(role), passphrase()
        from mmgen.identity.service_layer.accounts import Registration

        user_id = await self.identity.accounts.register(
            Registration(email=email, password=password, name=f"Test {role}", role=role),
            registered_by="admin",
        )
        tokens = await self.login(email, password)
        return {
            "user_id": user_id,
            "email": email,
            "password": password,
            **tokens,
            "auth": {"Authorization": f"Bearer {tokens['access_token']}"},
        }

    async def service_auth(self, service: str = "retention") -> dict[str, str]:
        secret = service_secret(self.identity.adapters.service_credentials_key, service)
        response = await self.client.post(
            "/auth/service-token", json={"service": service, "secret": secret}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@asynccontextmanager
async def running(settings: IdentitySettings) -> AsyncIterator[Running]:
    """Build the app, run its lifespan, and give an httpx client bound to it."""
    app = build_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://identity.test"
            ) as client:
                yield Running(app, client, settings)
    finally:
        # Drop the test's database (its topics die with the session's broker).
        mongo: Any = AsyncMongoClient(settings.mongo_uri)
        try:
            await mongo.drop_database(settings.mongo_database)
        finally:
            await mongo.close()


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and `type` slug, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert member in body
    if slug is not None:
        assert body["type"] == f"urn:mmgen:problem:{slug}", body
    return body


async def stored_events(svc: Running, **query: Any) -> list[Any]:
    """Raw event documents of the app's store matching `query` (e.g. `subject_id=...`)."""
    docs = svc.identity.adapters.db["events"].find(query)
    found = [doc async for doc in docs]
    found.sort(key=lambda d: d.get("producer_seq") or 0)
    return found


async def event_types(svc: Running, **query: Any) -> list[str]:
    return [doc["event_type"] for doc in await stored_events(svc, **query)]


async def stored_counts(svc: Running) -> dict[str, int]:
    """What a refused request must leave as it was: the events other than `AccessDenied` (every
    401/403 records one), the accounts, the email reservations and the refresh tokens."""
    db = svc.identity.adapters.db
    return {
        "events": await db["events"].count_documents(
            {"event_type": {"$ne": "identity.AccessDenied"}}
        ),
        "users": await db["users"].count_documents({}),
        "email_index": await db["email_index"].count_documents({}),
        "refresh_tokens": await db["refresh_tokens"].count_documents({}),
    }


async def stored_password_hash(svc: Running, user_id: str) -> str:
    """The password hash as stored: the `UserRegistered` event's sealed part, decrypted."""
    [doc] = await stored_events(svc, subject_id=user_id, event_type="identity.UserRegistered")
    event = await svc.identity.adapters.repository.mapper.to_domain(Envelope.from_document(doc))
    password_hash: str = event.personal.password_hash
    return password_hash


def erase_command(subject_id: str, held: Sequence[str] = (), **fixed: Any) -> Envelope:
    """A `retention.EraseSubject` command as retention publishes it (`fixed`: envelope fields)."""
    request_id = str(uuid.uuid4())
    return Envelope(
        event_type="retention.EraseSubject",
        schema_version=1,
        producer="retention",
        producer_seq=1,
        stream_id=f"privacy-request-{request_id}",
        stream_version=1,
        subject_id=subject_id,
        actor=Actor(id="retention", role="service"),
        purpose="legal_compliance",
        action="erase",
        resource=Resource(type="subject", id=subject_id),
        data={"request_id": request_id, "subject_id": subject_id, "categories_held": list(held)},
        **fixed,
    )

"""The app of a test module, and what many API tests need: creators with profiles, other
services' events published as their producers publish them, the app's stored events.

The app runs in-process through httpx with its lifespan (topics, relay, inbox, projection)
against the session's real database and broker, once per test module, in a database and under
a topic prefix of its own. Tests in a module share it, so each names its own people.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from mmgen.events.consumer import already_processed
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.platform import PlatformApp
from mmgen.profiles.bootstrap import ProfilesService
from mmgen.profiles.entrypoints.app import build_app
from mmgen.profiles.settings import ProfilesSettings
from mmgen.runtime.testing import Tokens, eventually, publish, running_app, service_settings

from ..conftest import details, sensitive

SENSITIVE_SHARING = "profile.sensitive_sharing"
_seq = itertools.count(1)


def profile_body(**overrides: Any) -> dict[str, Any]:
    """A whole `PUT /profiles/me` body (the sample profile of `tests/conftest.py`)."""
    secret = overrides.pop("sensitive", None)
    body: dict[str, Any] = details(**overrides).model_dump(mode="json", by_alias=True)
    body["sensitive"] = secret if secret is not None else sensitive().model_dump(mode="json")
    return body


def consent_decision(
    creator_id: str, *, granted: bool, version: int, purpose: str = SENSITIVE_SHARING
) -> Envelope:
    """`consent.ConsentGranted` / `ConsentWithdrawn` as consent publishes them
    (services/consent/src/mmgen/consent/domain/events.py and domain/model.py): one stream per
    subject, the subject's own decision; the evidence travels encrypted in `pii`, which
    profiles never reads, so it is left out here."""
    return Envelope(
        event_type="consent.ConsentGranted" if granted else "consent.ConsentWithdrawn",
        schema_version=1,
        producer="consent",
        producer_seq=next(_seq),
        stream_id=f"consent-subject:{creator_id}",
        stream_version=version,
        subject_id=creator_id,
        actor=Actor(id=creator_id, role="creator"),
        action="consent",
        resource=Resource(type="consent", id=f"{creator_id}:{purpose}"),
        data={"purpose": purpose, "policy_version": "p-1", "method": "explicit"},
        categories=("consent", "sensitive"),
    )


def project_created(project_id: str, owner_id: str) -> Envelope:
    """`projects.ProjectCreated` as projects publishes it (services/projects/.../events.py):
    the project's stream is keyed by its id; title and requirements are encrypted (left out)."""
    return Envelope(
        event_type="projects.ProjectCreated",
        schema_version=1,
        producer="projects",
        producer_seq=next(_seq),
        stream_id=project_id,
        stream_version=1,
        subject_id=owner_id,
        actor=Actor(id=owner_id, role="client"),
        action="create",
        resource=Resource(type="project", id=project_id),
        data={"owner_id": owner_id, "budget_band": None, "deadline": None},
        categories=("project",),
    )


def membership(
    project_id: str,
    user_id: str,
    *,
    added: bool,
    version: int,
    role: str = "creator",
    by: str | None = None,
) -> Envelope:
    """`projects.MemberAdded` / `MemberRemoved` as projects publishes them."""
    data: dict[str, Any] = {"project_id": project_id, "user_id": user_id, "role": role}
    if not added:
        data["reason"] = "removed"
    return Envelope(
        event_type="projects.MemberAdded" if added else "projects.MemberRemoved",
        schema_version=1,
        producer="projects",
        producer_seq=next(_seq),
        stream_id=project_id,
        stream_version=version,
        subject_id=user_id,
        actor=Actor(id=by or user_id, role="client"),
        action="create" if added else "delete",
        resource=Resource(type="membership", id=project_id),
        data=data,
        categories=("project",),
    )


class Api:
    """Thin helpers over the client, the wired service and its database."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens, service: ProfilesService) -> None:
        self.client = client
        self.tokens = tokens
        self.service = service
        self.settings = service.settings
        assert service.runtime.db is not None
        self.db = service.runtime.db

    async def creator(
        self, *, publish: bool = True, **overrides: Any
    ) -> tuple[str, dict[str, str]]:
        """A creator who put a profile (published unless told); their id and headers."""
        creator_id, headers = self.tokens.headers("creator")
        response = await self.client.put(
            "/profiles/me", headers=headers, json=profile_body(**overrides)
        )
        assert response.status_code == 200, response.text
        if publish:
            response = await self.client.post("/profiles/me/publish", headers=headers)
            assert response.status_code == 200, response.text
        return creator_id, headers

    async def publish(self, *envelopes: Envelope) -> None:
        """Publish events to their producer's topic under this app's prefix."""
        for envelope in envelopes:
            topic = self.settings.topic(f"{envelope.producer}.events")
            await publish(self.settings.kafka_bootstrap, topic, envelope)

    async def consumed(self, *envelopes: Envelope) -> None:
        """Until the inbox has committed the effect of each of `envelopes`."""
        inbox = f"{self.service.runtime.name}-inbox"
        for envelope in envelopes:

            async def done(event_id: str = envelope.event_id) -> bool:
                return await already_processed(self.db, inbox, event_id)

            await eventually(done, timeout=30)

    async def deliver(self, *envelopes: Envelope) -> None:
        """Publish and wait until the inbox applied them (the next read sees their effect)."""
        await self.publish(*envelopes)
        await self.consumed(*envelopes)

    async def mark(self) -> int:
        """The store's highest `producer_seq` now (to read only what a test appends later)."""
        last = await self.db["events"].find_one({}, sort=[("producer_seq", -1)])
        return int(last["producer_seq"]) if last else 0

    async def events(self, after: int = 0, **query: Any) -> list[dict[str, Any]]:
        """Raw stored events matching `query` (appended after the `mark` `after`)."""
        query["producer_seq"] = {"$gt": after}
        return await self.db["events"].find(query).sort("producer_seq", 1).to_list(None)


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens.generate()


def profiles_settings(infra: Any, **overrides: Any) -> ProfilesSettings:
    """Settings of one app under test: own database, topic prefix and inbox group."""
    settings = service_settings(ProfilesSettings, infra, **overrides)
    return settings.model_copy(update={"consumer_group": f"{settings.topic_prefix}profiles-inbox"})


@pytest.fixture(scope="module")
def settings(infra: Any) -> ProfilesSettings:
    return profiles_settings(infra)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    settings: ProfilesSettings, tokens: Tokens
) -> AsyncIterator[tuple[PlatformApp, httpx.AsyncClient]]:
    async with running_app(build_app(settings, key_set=tokens.key_set())) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(running: tuple[PlatformApp, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


@pytest.fixture(scope="module")
def api(running: tuple[PlatformApp, httpx.AsyncClient], tokens: Tokens) -> Api:
    app, client = running
    return Api(client, tokens, app.state.profiles)

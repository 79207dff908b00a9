"""Fixtures of the profiles tests: the service's parts over in-memory fakes, sample profiles.

`Profiles` assembles what a bootstrap would (kernel, read models, projection, inbox handlers,
erasure participant, audit trail) over fakes; integration tests build the same over the real
database (`profiles_on`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.events.kernel import EventKernel, in_memory_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.profiles.adapters.memory import (
    InMemoryConsentGrants,
    InMemoryMemberships,
    InMemoryProfileReadModel,
    InMemorySearchIndex,
)
from mmgen.profiles.adapters.projection import ForeignEvents, ProfileProjection
from mmgen.profiles.adapters.read_models import (
    ConsentGrants,
    KeystoreErasedSubjects,
    Memberships,
    ProfileReadModel,
    SearchIndex,
)
from mmgen.profiles.domain.events import profiles_registry
from mmgen.profiles.domain.profile import ProfileDetails, SensitiveDetails
from mmgen.profiles.service_layer.erasure import ProfilesErasure
from mmgen.profiles.service_layer.profiles import (
    OwnProfile,
    Relationships,
    publish_profile,
    put_profile,
)
from mmgen.runtime.contract import StandardEvents, register_standard_events
from mmgen.runtime.trail import AuditTrail

TODAY = date(2026, 12, 1)


def details(**overrides: Any) -> ProfileDetails:
    base: dict[str, Any] = {
        "display_name": "Mia Laurent",
        "category": "model",
        "bio": "Editorial and runway model based in Lyon.",
        "skills": ["Runway", "Editorial"],
        "city": "Lyon",
        "languages": ["fr", "en"],
        "rates": "300_600",
        "experience": [
            {"title": "Runway model", "organisation": "Maison Rouge", "from": "2021-03-01"}
        ],
        "portfolio": [{"title": "Spring campaign", "url": "https://example.com/mia/spring"}],
    }
    base.update(overrides)
    return ProfileDetails.model_validate(base)


def sensitive(**overrides: Any) -> SensitiveDetails:
    base: dict[str, Any] = {
        "phone": "+33 6 12 34 56 78",
        "email": "mia.laurent@example.org",
        "date_of_birth": "1996-04-17",
        "address": "12 rue Victor Hugo, 69002 Lyon",
        "measurements": {"height_cm": 178, "waist_cm": 61},
    }
    base.update(overrides)
    return SensitiveDetails.model_validate(base)


def new_id() -> str:
    return str(uuid.uuid4())


def creator_actor(creator_id: str) -> Actor:
    return Actor(id=creator_id, role="creator")


def foreign_envelope(
    event_type: str,
    data: dict[str, Any],
    *,
    subject_id: str | None,
    stream_id: str,
    stream_version: int,
    producer: str | None = None,
) -> Envelope:
    """An event as another service publishes it (only what profiles reads matters)."""
    return Envelope(
        event_type=event_type,
        schema_version=1,
        producer=producer or event_type.split(".", 1)[0],
        producer_seq=stream_version,
        stream_id=stream_id,
        stream_version=stream_version,
        subject_id=subject_id,
        action="update",
        resource=Resource(type="thing", id=stream_id),
        data=data,
    )


def consent_event(creator_id: str, *, granted: bool, version: int, purpose: str = "") -> Envelope:
    return foreign_envelope(
        "consent.ConsentGranted" if granted else "consent.ConsentWithdrawn",
        {
            "purpose": purpose or "profile.sensitive_sharing",
            "policy_version": "v1",
            "method": "explicit",
        },
        subject_id=creator_id,
        stream_id=f"consent-subject:{creator_id}",
        stream_version=version,
    )


def project_created(project_id: str, owner_id: str) -> Envelope:
    return foreign_envelope(
        "projects.ProjectCreated",
        {"owner_id": owner_id, "budget_band": None, "deadline": None},
        subject_id=owner_id,
        stream_id=project_id,
        stream_version=1,
    )


def membership_event(
    project_id: str, user_id: str, *, added: bool, version: int, role: str = "creator"
) -> Envelope:
    data: dict[str, Any] = {"project_id": project_id, "user_id": user_id, "role": role}
    if not added:
        data["reason"] = "removed"
    return foreign_envelope(
        "projects.MemberAdded" if added else "projects.MemberRemoved",
        data,
        subject_id=user_id,
        stream_id=project_id,
        stream_version=version,
    )


@dataclass
class Profiles:
    """The service's parts, wired as a bootstrap would (no HTTP, no messaging)."""

    kernel: EventKernel
    profiles: ProfileReadModel
    index: SearchIndex
    consents: ConsentGrants
    memberships: Memberships
    standard: StandardEvents
    projection: ProfileProjection = field(init=False)
    foreign: ForeignEvents = field(init=False)
    erasure: ProfilesErasure = field(init=False)
    relationships: Relationships = field(init=False)
    trail: AuditTrail = field(init=False)

    def __post_init__(self) -> None:
        repo = self.kernel.repository
        self.projection = ProfileProjection(repo, self.profiles, self.index)
        self.foreign = ForeignEvents(
            consents=self.consents,
            memberships=self.memberships,
            profiles=self.profiles,
            index=self.index,
            erased=KeystoreErasedSubjects(self.kernel.keystore),
        )
        self.erasure = ProfilesErasure(
            repository=repo,
            keystore=self.kernel.keystore,
            profiles=self.profiles,
            index=self.index,
            consents=self.consents,
            memberships=self.memberships,
        )
        self.relationships = Relationships(self.consents, self.memberships)
        self.trail = AuditTrail(repo, self.standard)

    @property
    def repository(self) -> Any:
        return self.kernel.repository

    async def catch_up(self) -> int:
        """Apply every stored event to the projection, as the runtime's tailer would."""
        last = await self.kernel.store.last_seq()
        applied = 0
        for start in range(1, last + 1, 500):
            for envelope in await self.kernel.store.read_range(start, min(last + 1, start + 500)):
                await self.projection.apply(envelope)
                applied += 1
        return applied

    async def deliver(self, *envelopes: Envelope) -> None:
        """Hand other services' events to the inbox handlers (no transaction in memory)."""
        handlers = self.foreign.handlers()
        for envelope in envelopes:
            await handlers[envelope.event_type](envelope, None)  # type: ignore[arg-type]

    async def creator(
        self,
        *,
        publish: bool = True,
        creator_id: str | None = None,
        secrets: SensitiveDetails | None = None,
        **overrides: Any,
    ) -> OwnProfile:
        """A creator with a profile (published unless told), projected."""
        cid = creator_id or new_id()
        own, _ = await put_profile(
            self.repository,
            actor=creator_actor(cid),
            details=details(**overrides),
            sensitive=secrets if secrets is not None else sensitive(),
            today=TODAY,
        )
        if publish:
            own, _ = await publish_profile(self.repository, actor=creator_actor(cid))
        await self.projection.refresh(cid)
        return own


def registry_with_standard() -> tuple[Any, StandardEvents]:
    registry = profiles_registry()
    return registry, register_standard_events(registry, "profiles")


@pytest.fixture
def parts() -> Profiles:
    registry, standard = registry_with_standard()
    kernel = in_memory_kernel(
        producer="profiles",
        registry=registry,
        keyring=MasterKeyring(MasterKey.generate()),
    )
    return Profiles(
        kernel=kernel,
        profiles=InMemoryProfileReadModel(),
        index=InMemorySearchIndex(),
        consents=InMemoryConsentGrants(),
        memberships=InMemoryMemberships(),
        standard=standard,
    )


def now() -> datetime:
    return datetime.now(UTC)

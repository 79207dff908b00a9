"""Use cases of profiles: write, publish, and read under the reveal rule — dependencies explicit.

The owner's reads come from the event store (read-your-writes, sensitive details included);
everyone else's come from the read model, through the reveal rule (`domain.reveal.decide`).
Reads and refusals that the audit trail must record come back as `Access` / `Denial` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from mmgen.events.envelope import Actor
from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.events.repository import EventSourcedRepository
from mmgen.profiles.adapters.read_models import (
    ConsentGrants,
    Memberships,
    ProfileReadModel,
    ProfileRow,
    shared_projects,
)
from mmgen.profiles.domain.errors import (
    NotACreatorError,
    ProfileConflictError,
    ProfileErasedError,
    ProfileNotFoundError,
)
from mmgen.profiles.domain.events import PORTFOLIO, SENSITIVE
from mmgen.profiles.domain.model import CreatorProfile, profile_stream
from mmgen.profiles.domain.profile import NO_SENSITIVE_DETAILS, ProfileDetails, SensitiveDetails
from mmgen.profiles.domain.reveal import (
    ANONYMOUS,
    Basis,
    Context,
    Decision,
    Relations,
    Target,
    Viewer,
    decide,
    relations_needed,
)
from mmgen.profiles.service_layer.audit import Access, Denial

if TYPE_CHECKING:
    from mmgen.platform.auth import Principal

#: Appends retried when another request changed the profile in between.
PUT_ATTEMPTS = 3


def viewer_of(principal: Principal | None, purpose: str | None = None) -> Viewer:
    """The reveal rule's view of a verified caller (None: anonymous)."""
    if principal is None:
        return ANONYMOUS
    return Viewer(principal.subject_id, str(principal.role), purpose)  # type: ignore[arg-type]


class ProfileHiddenError(ProfileNotFoundError):
    """A profile exists but the caller may not see it: 404 like a missing one, and audited."""

    def __init__(self, denial: Denial) -> None:
        super().__init__()
        self.denial = denial


# --- the owner ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnProfile:
    """Everything of a creator's profile, for the creator."""

    creator_id: str
    details: ProfileDetails
    sensitive: SensitiveDetails
    published: bool
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    published_at: datetime | None

    @classmethod
    def of(cls, profile: CreatorProfile) -> OwnProfile:
        if not profile.created:
            raise ProfileNotFoundError()
        details, sensitive = profile.details, profile.sensitive
        if not isinstance(details, ProfileDetails) or not isinstance(sensitive, SensitiveDetails):
            raise ProfileErasedError()
        return cls(
            creator_id=profile.creator_id,
            details=details,
            sensitive=sensitive,
            published=profile.published,
            version=profile.version,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
            published_at=profile.published_at,
        )


def _creator(actor: Actor, creator_id: str) -> None:
    if actor.role != "creator" or actor.id != creator_id:
        raise NotACreatorError()


async def _load(repository: EventSourcedRepository, creator_id: str) -> CreatorProfile:
    found = await repository.get(CreatorProfile, profile_stream(creator_id))
    return found or CreatorProfile.new(creator_id)


async def _save(repository: EventSourcedRepository, profile: CreatorProfile) -> None:
    try:
        await repository.save(profile)
    except OwnerErasedError as exc:
        raise ProfileErasedError() from exc


async def put_profile(
    repository: EventSourcedRepository,
    *,
    actor: Actor,
    details: ProfileDetails,
    sensitive: SensitiveDetails = NO_SENSITIVE_DETAILS,
    today: date | None = None,
) -> tuple[OwnProfile, list[str]]:
    """Write the caller's profile (creators only); returns it and what changed."""
    _creator(actor, actor.id)
    day = today or datetime.now(UTC).date()
    for _ in range(PUT_ATTEMPTS):
        profile = await _load(repository, actor.id)
        changed = profile.put(details, sensitive, actor=actor, today=day)
        try:
            await _save(repository, profile)
        except ConcurrencyError:
            continue
        return OwnProfile.of(profile), changed
    raise ProfileConflictError()


async def get_own_profile(repository: EventSourcedRepository, *, actor: Actor) -> OwnProfile:
    _creator(actor, actor.id)
    profile = await repository.get(CreatorProfile, profile_stream(actor.id))
    if profile is None:
        raise ProfileNotFoundError("you have not written a profile yet")
    return OwnProfile.of(profile)


async def set_published(
    repository: EventSourcedRepository, *, actor: Actor, published: bool
) -> tuple[OwnProfile, bool]:
    """Publish or unpublish the caller's profile; returns it and whether anything changed."""
    _creator(actor, actor.id)
    for _ in range(PUT_ATTEMPTS):
        profile = await repository.get(CreatorProfile, profile_stream(actor.id))
        if profile is None:
            raise ProfileNotFoundError("write your profile before publishing it")
        changed = profile.publish(actor=actor) if published else profile.unpublish(actor=actor)
        try:
            await _save(repository, profile)
        except ConcurrencyError:
            continue
        return OwnProfile.of(profile), changed
    raise ProfileConflictError()


async def publish_profile(
    repository: EventSourcedRepository, *, actor: Actor
) -> tuple[OwnProfile, bool]:
    return await set_published(repository, actor=actor, published=True)


async def unpublish_profile(
    repository: EventSourcedRepository, *, actor: Actor
) -> tuple[OwnProfile, bool]:
    return await set_published(repository, actor=actor, published=False)


# --- everyone else -------------------------------------------------------------------------------


class Relationships:
    """What the reveal rule may need about a creator and a viewer, read only when it matters."""

    def __init__(self, consents: ConsentGrants, memberships: Memberships) -> None:
        self.consents = consents
        self.memberships = memberships

    async def between(self, viewer: Viewer, target: Target, context: Context) -> Relations:
        needed = relations_needed(viewer, target, context)
        consent = needed.consent and await self.consents.is_granted(target.creator_id)
        shared: frozenset[str] = frozenset()
        if needed.shared_projects and viewer.subject_id is not None:
            shared = await shared_projects(self.memberships, target.creator_id, viewer.subject_id)
        return Relations(consent_granted=consent, shared_projects=shared)


@dataclass(frozen=True)
class PublicProfile:
    """A profile as someone else sees it: the public part only."""

    creator_id: str
    details: ProfileDetails
    published: bool
    updated_at: datetime | None
    published_at: datetime | None

    @classmethod
    def of(cls, row: ProfileRow) -> PublicProfile:
        assert row.details is not None
        return cls(row.creator_id, row.details, row.published, row.updated_at, row.published_at)


@dataclass(frozen=True)
class Revealed:
    """The sensitive fields shown to this caller, and on which basis."""

    sensitive: SensitiveDetails
    fields: tuple[str, ...]
    basis: Basis


@dataclass(frozen=True)
class ProfileRead:
    """A profile as this caller may see it, and the access events the read must leave."""

    profile: PublicProfile
    #: Set when the reveal rule shows this caller the sensitive fields (the owner included).
    revealed: Revealed | None
    #: What the audit trail must record before the answer leaves (ids and field names only).
    accesses: tuple[Access, ...]


async def _visible(
    profiles: ProfileReadModel, relationships: Relationships, viewer: Viewer, creator_id: str
) -> tuple[ProfileRow, Decision]:
    row = await profiles.get(creator_id)
    if row is None or row.details is None:
        raise ProfileNotFoundError()
    target = row.target
    relations = await relationships.between(viewer, target, Context.profile)
    decision = decide(viewer, target, relations, Context.profile)
    if not decision.visible:
        raise ProfileHiddenError(
            Denial(code="profile-hidden", subject_id=creator_id, purpose=viewer.purpose)
        )
    return row, decision


async def load_sensitive(
    repository: EventSourcedRepository, event_id: str | None
) -> SensitiveDetails | None:
    """The sensitive details sealed in one stored event; None when erased or never set."""
    if event_id is None:
        return None
    envelope = await repository.store.get(event_id)
    if envelope is None:
        return None
    (event,) = await repository.decode([envelope])
    personal = event.personal
    return personal if isinstance(personal, SensitiveDetails) else None


async def read_profile(
    profiles: ProfileReadModel,
    relationships: Relationships,
    repository: EventSourcedRepository,
    *,
    viewer: Viewer,
    creator_id: str,
) -> ProfileRead:
    """A profile under the reveal rule: the public part, and the sensitive fields when the rule
    shows them to this caller (`ProfileNotFoundError` when the caller may not see it at all).

    Audited callers' reads record the public fields read; every reveal to someone other than
    the owner records the sensitive field names shown, with the declared purpose."""
    row, decision = await _visible(profiles, relationships, viewer, creator_id)
    profile = PublicProfile.of(row)
    accesses: list[Access] = []
    if decision.audited:
        accesses.append(
            Access(
                resource_id=creator_id,
                subject_id=creator_id,
                categories=(PORTFOLIO,),
                purpose=viewer.purpose,
                fields=tuple(profile.details.filled_fields()),
            )
        )
    revealed = None
    if decision.reveal and decision.basis is not None:
        sensitive = await load_sensitive(repository, row.sensitive_event_id)
        sensitive = sensitive or NO_SENSITIVE_DETAILS
        fields = tuple(sensitive.filled_fields())
        revealed = Revealed(sensitive, fields, decision.basis)
        if fields and decision.basis is not Basis.owner:
            accesses.append(
                Access(
                    resource_id=creator_id,
                    subject_id=creator_id,
                    categories=(SENSITIVE,),
                    purpose=viewer.purpose,
                    fields=fields,
                )
            )
    return ProfileRead(profile, revealed, tuple(accesses))

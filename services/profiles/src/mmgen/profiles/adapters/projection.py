"""Projections: the service's own events into the profile rows and the search index, and other
services' events into the consent and membership read models. Every `apply` is idempotent.

`ProfileProjection.apply` (the runtime's checkpointed projection over the store) does not fold
the event it is given: it loads the creator's aggregate as it is now and writes that state,
guarded by the stream version. Whoever applies — a replica racing another, a replay after a
crash — an older state can never overwrite a newer one, and a replay from scratch loads each
stream once (later events of a stream find the row already at their version).

`ForeignEvents` holds the inbox handlers. Each write is guarded by the version of the
producer's stream (the consent stream of the subject, the project's stream), so redelivered
or late events never move a record backwards, and each is skipped for a subject erased here.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mmgen.events.envelope import Envelope
from mmgen.events.errors import EventDataInvalidError
from mmgen.events.repository import EventSourcedRepository
from mmgen.profiles.adapters.foreign import (
    CONSENT_EVENT_TYPES,
    CONSENT_GRANTED,
    IDENTITY_EVENT_TYPES,
    MEMBER_ADDED,
    PROJECT_CREATED,
    PROJECT_EVENT_TYPES,
    SENSITIVE_SHARING,
    ConsentDecision,
    MembershipData,
    ProjectCreatedData,
    SubjectOf,
)
from mmgen.profiles.adapters.read_models import (
    TOMBSTONE_VERSION,
    ConsentGrant,
    ConsentGrants,
    ErasedSubjects,
    Membership,
    Memberships,
    ProfileReadModel,
    ProfileRow,
    SearchIndex,
    epoch_ms,
)
from mmgen.profiles.domain.events import PROFILE_EVENT_TYPES
from mmgen.profiles.domain.model import CreatorProfile, creator_of_stream, profile_stream
from mmgen.profiles.domain.profile import NO_SENSITIVE_DETAILS, ProfileDetails, SensitiveDetails
from mmgen.profiles.domain.search import index_tokens
from mmgen.runtime.contract import well_formed_id

if TYPE_CHECKING:
    from mmgen.events.consumer import HandlerContext

log = logging.getLogger(__name__)

LOCK_STRIPES = 64

InboxHandler = Callable[[Envelope, "HandlerContext"], Awaitable[None]]


def row_of(profile: CreatorProfile) -> ProfileRow:
    """The read-model row of a folded profile (its public part; a pointer for the rest)."""
    details = profile.details
    return ProfileRow(
        creator_id=profile.creator_id,
        version=profile.version,
        details=details if isinstance(details, ProfileDetails) else None,
        published=profile.published,
        sensitive_event_id=profile.sensitive_event_id,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
        published_at=profile.published_at,
    )


class ProfileProjection:
    """The service's events → `ProfileReadModel` and `SearchIndex`."""

    name = "profiles"

    def __init__(
        self,
        repository: EventSourcedRepository,
        profiles: ProfileReadModel,
        index: SearchIndex,
    ) -> None:
        self.repository = repository
        self.profiles = profiles
        self.index = index
        # One refresh per creator at a time in this process (the runtime's projection and a
        # request handler may both refresh); replicas are kept apart by the version guard.
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    async def apply(self, envelope: Envelope) -> None:
        if envelope.event_type in PROFILE_EVENT_TYPES:
            await self.refresh(creator_of_stream(envelope.stream_id), envelope.stream_version)

    async def refresh(self, creator_id: str, at_least_version: int = 0) -> None:
        """Bring the creator's row and tokens to the stored state (if not there already)."""
        async with self._locks[zlib.crc32(creator_id.encode()) % LOCK_STRIPES]:
            await self._refresh(creator_id, at_least_version)

    async def _refresh(self, creator_id: str, at_least_version: int) -> None:
        stored = await self.profiles.version(creator_id)
        if stored == TOMBSTONE_VERSION:
            return
        if stored is not None and at_least_version and stored >= at_least_version:
            return
        profile = await self.repository.get(CreatorProfile, profile_stream(creator_id))
        if profile is None:
            return
        if profile.erased:
            # The key is gone (erasure wrote the tombstone): leave nothing searchable.
            await self.index.remove(creator_id)
            return
        row = row_of(profile)
        if not await self.profiles.put(row):
            return
        sensitive = profile.sensitive
        await self._reindex(row, sensitive if isinstance(sensitive, SensitiveDetails) else None)

    async def _reindex(self, row: ProfileRow, sensitive: SensitiveDetails | None) -> None:
        current = await self.profiles.get(row.creator_id)  # the account state is not in `row`
        listed_at = row.listed_at
        if current is None or not current.listed or row.details is None or listed_at is None:
            await self.index.remove(row.creator_id)
            return
        tokens = index_tokens(row.details, sensitive or NO_SENSITIVE_DETAILS)
        await self.index.replace(row.creator_id, tokens, epoch_ms(listed_at))
        # An erasure, an unpublish or a closed account may have landed meanwhile.
        after = await self.profiles.get(row.creator_id)
        if after is None or not after.listed:
            await self.index.remove(row.creator_id)

    async def reset(self) -> None:
        """Empty what the service's own events rebuild (the runtime then replays the store)."""
        await self.index.clear()
        await self.profiles.reset()


class ForeignEvents:
    """Inbox handlers for consent's, projects' and identity's events."""

    def __init__(
        self,
        *,
        consents: ConsentGrants,
        memberships: Memberships,
        profiles: ProfileReadModel,
        index: SearchIndex,
        erased: ErasedSubjects,
    ) -> None:
        self.consents = consents
        self.memberships = memberships
        self.profiles = profiles
        self.index = index
        self.erased = erased

    def handlers(self) -> dict[str, InboxHandler]:
        """`{event_type: handler}` for the runtime's inbox (`runtime.on`)."""
        table: dict[str, InboxHandler] = {}
        for types, handler in (
            (CONSENT_EVENT_TYPES, self.on_consent),
            (PROJECT_EVENT_TYPES, self.on_project),
            (IDENTITY_EVENT_TYPES, self.on_identity),
        ):
            table.update(dict.fromkeys(types, handler))
        return table

    async def on_consent(self, envelope: Envelope, ctx: HandlerContext | None = None) -> None:
        """`profile.sensitive_sharing` granted or withdrawn: reveals follow from the next read."""
        if envelope.event_type not in CONSENT_EVENT_TYPES:
            return
        decision = ConsentDecision.model_validate(envelope.data)
        if decision.purpose != SENSITIVE_SHARING:
            return
        creator = well_formed_id(envelope.subject_id)
        if creator is None:
            raise EventDataInvalidError(f"consent event {envelope.event_id} names no subject")
        if await self.erased.is_erased(creator):
            return
        await self.consents.record(
            ConsentGrant(
                creator_id=creator,
                granted=envelope.event_type == CONSENT_GRANTED,
                version=envelope.stream_version,
                event_id=envelope.event_id,
                decided_at=envelope.occurred_at,
            ),
            session=ctx.session if ctx is not None else None,
        )

    async def on_project(self, envelope: Envelope, ctx: HandlerContext | None = None) -> None:
        """A project's owner and its members, as pairs (project, user) with their role."""
        if envelope.event_type not in PROJECT_EVENT_TYPES:
            return
        if envelope.event_type == PROJECT_CREATED:
            created = ProjectCreatedData.model_validate(envelope.data)
            membership = Membership(
                project_id=envelope.stream_id,
                user_id=created.owner_id,
                role="owner",
                active=True,
                version=envelope.stream_version,
            )
        else:
            data = MembershipData.model_validate(envelope.data)
            membership = Membership(
                project_id=data.project_id,
                user_id=data.user_id,
                role=data.role,
                active=envelope.event_type == MEMBER_ADDED,
                version=envelope.stream_version,
            )
        if await self.erased.is_erased(membership.user_id):
            return
        await self.memberships.record(membership, session=ctx.session if ctx is not None else None)

    async def on_identity(self, envelope: Envelope, ctx: HandlerContext | None = None) -> None:
        """Identity ended the account (closed or erased): off search and hidden, at once."""
        if envelope.event_type not in IDENTITY_EVENT_TYPES:
            return
        subject = SubjectOf.model_validate(
            {"subject_id": envelope.subject_id or envelope.data.get("subject_id")}
        ).subject_id
        session = ctx.session if ctx is not None else None
        await self.profiles.close(subject, session=session)
        removed = await self.index.remove(subject, session=session)
        log.info("account ended: profile hidden", extra={"postings_removed": removed})

"""The profiles service's part of the erasure contract (`mmgen.runtime.erasure`).

What this service holds on a subject, by category:

- `portfolio`: the profile's events (personal part under the subject's key), its read-model
  row and its search postings (in clear);
- `sensitive`: the `SensitiveDetailsSet` events (personal part under the subject's key only);
- `consent`: the `profile.sensitive_sharing` decision learnt from consent (a row);
- `project`: project memberships learnt from projects, as owner or member (rows).

Erasure takes the creator off search at once (postings deleted), then — unless `portfolio` or
`sensitive` is held — leaves a tombstone in place of the profile row and shreds the subject's
key, which makes every event's personal part unreadable in the store, on Kafka and in
backups. Both categories are sealed under one key, so a hold on either keeps the key; the
profile is then hidden (as for a closed account) and kept. Consent and membership rows are
deleted unless their category is held. The shred leaves an erasure marker even for a subject
that never had a key here, so no late event writes their records again.

A profile is its creator's personal data as a whole (its id is the creator's id), so there is
no resource to anonymise on its own: `anonymize_resource` answers with zero counts, as does
a `project:<id>` anonymisation (this service holds project ids only, no project contents).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.keys import Keystore
from mmgen.events.mapper import DomainEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.profiles.adapters.read_models import (
    ConsentGrants,
    Memberships,
    ProfileReadModel,
    SearchIndex,
)
from mmgen.profiles.domain.events import FIELD_CATEGORIES, PORTFOLIO, SENSITIVE
from mmgen.profiles.domain.model import CreatorProfile, profile_stream
from mmgen.runtime.contract import (
    ExportedActor,
    ExportedEvent,
    Footprint,
    SubjectExport,
    owner_of_subject,
)
from mmgen.runtime.erasure import (
    AnonymizationOutcome,
    AnonymizeOrder,
    EraseOrder,
    ErasureOutcome,
)

CONSENT = "consent"
PROJECT = "project"
#: Categories sealed under the subject's key here: a hold on any of them keeps the key.
SEALED = frozenset({PORTFOLIO, SENSITIVE})


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


class ProfilesErasure:
    """`ErasureParticipant` of the profiles service."""

    service = "profiles"

    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        keystore: Keystore,
        profiles: ProfileReadModel,
        index: SearchIndex,
        consents: ConsentGrants,
        memberships: Memberships,
        max_export_events: int = 1_000,
    ) -> None:
        self.repository = repository
        self.keystore = keystore
        self.profiles = profiles
        self.index = index
        self.consents = consents
        self.memberships = memberships
        self.max_export_events = max_export_events

    async def _held_categories(self, subject_id: str) -> set[str]:
        """The categories of which this service holds records on the subject."""
        held: set[str] = set()
        if await self.repository.store.stream_version(profile_stream(subject_id)):
            held |= SEALED
        if await self.consents.get(subject_id) is not None:
            held.add(CONSENT)
        if await self.memberships.of_user(subject_id):
            held.add(PROJECT)
        return held

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        subject, session = order.subject_id, order.session
        present = await self._held_categories(subject)
        held = set(order.categories_held)
        deleted: Counter[str] = Counter()
        deleted[PORTFOLIO] += await self.index.remove(subject, session=session)
        shredded = 0
        if held & SEALED:
            await self.profiles.close(subject, session=session)
        else:
            deleted[PORTFOLIO] += int(await self.profiles.erase(subject, session=session))
            shredded = int(
                await self.keystore.shred(owner_of_subject(subject), by=order.command.event_id)
            )
        if CONSENT not in held:
            deleted[CONSENT] += await self.consents.delete(subject, session=session)
        if PROJECT not in held:
            deleted[PROJECT] += await self.memberships.delete_user(subject, session=session)
        return ErasureOutcome(
            keys_shredded=shredded,
            records_deleted={category: n for category, n in sorted(deleted.items()) if n},
            categories_held=sorted(held & present),
        )

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        return AnonymizationOutcome()

    # --- what is held ---------------------------------------------------------------------------

    async def _events(self, subject_id: str) -> tuple[list[DomainEvent[Any]], bool]:
        stream = profile_stream(subject_id)
        total = await self.repository.store.stream_version(stream)
        events = await self.repository.load(stream, up_to_version=self.max_export_events)
        return events, total > len(events)

    async def export(self, subject_id: str) -> SubjectExport:
        """Everything held on the subject, decrypted (erased values as `{"erased": true}`)."""
        events, truncated = await self._events(subject_id)
        records: dict[str, Any] = {}
        profile = await self.repository.get(CreatorProfile, profile_stream(subject_id))
        if profile is not None and profile.created:
            records["profile"] = {
                "published": profile.published,
                "created_at": profile.created_at,
                "updated_at": profile.updated_at,
                "published_at": profile.published_at,
                "details": _plain(profile.details),
                "sensitive": _plain(profile.sensitive),
            }
        records["search_postings"] = await self.index.count(subject_id)
        grant = await self.consents.get(subject_id)
        if grant is not None:
            records["sensitive_sharing_consent"] = {
                "granted": grant.granted,
                "decided_at": grant.decided_at,
            }
        memberships = await self.memberships.of_user(subject_id)
        if memberships:
            records["project_memberships"] = [
                {"project_id": m.project_id, "role": m.role, "active": m.active}
                for m in sorted(memberships, key=lambda m: m.project_id)
            ]
        return SubjectExport(
            service=self.service,
            subject_id=subject_id,
            generated_at=datetime.now(UTC),
            erased=await self.keystore.is_erased(owner_of_subject(subject_id)),
            records=records,
            events=[_exported(e) for e in events],
            events_truncated=truncated,
        )

    async def footprint(self, subject_id: str) -> Footprint:
        """Per category: records held and personal values still readable (counts only)."""
        records: Counter[str] = Counter()
        readable: Counter[str] = Counter()
        stream = profile_stream(subject_id)
        for event in await self.repository.load(stream):
            records.update(event.envelope.categories)
            personal = event.personal
            if personal is None or is_erased(personal):
                continue
            for name, value in personal:
                if _filled(value):
                    readable[FIELD_CATEGORIES.get(name, PORTFOLIO)] += 1
        row = await self.profiles.get(subject_id)
        if row is not None and row.details is not None:
            records[PORTFOLIO] += 1
            readable[PORTFOLIO] += len(row.details.filled_fields())
        postings = await self.index.count(subject_id)
        if postings:
            records[PORTFOLIO] += postings
            readable[PORTFOLIO] += postings  # each holds a word of the public part
        if await self.consents.get(subject_id) is not None:
            records[CONSENT] += 1
            readable[CONSENT] += 1
        memberships = len(await self.memberships.of_user(subject_id))
        if memberships:
            records[PROJECT] += memberships
            readable[PROJECT] += memberships
        return Footprint.of(
            self.service,
            subject_id,
            key_erased=await self.keystore.is_erased(owner_of_subject(subject_id)),
            records=dict(records),
            readable=dict(readable),
        )


def _plain(value: Any) -> Any:
    if is_erased(value):
        return {"erased": True}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _exported(event: DomainEvent[Any]) -> ExportedEvent:
    envelope = event.envelope
    actor = envelope.actor
    return ExportedEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        occurred_at=envelope.occurred_at,
        action=envelope.action,
        actor=ExportedActor(id=actor.id, role=actor.role) if actor else None,
        purpose=envelope.purpose,
        categories=list(envelope.categories),
        data=dict(envelope.data),
        personal=None if event.personal is None else _plain(event.personal),
    )

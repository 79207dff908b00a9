"""Consent's part of the erasure contract (DESIGN.md): erase a subject, export, footprint.

The runtime parses retention's commands, calls this participant and appends the answer
(`consent.SubjectErased` / `consent.ResourceAnonymized`, counts only); it also serves
`/internal/subjects/{id}/export|footprint` from it, auditing every export.

Erasure shreds the subject's data key (every copy of their encrypted fields — event store,
Kafka, backups — becomes unreadable at once) and deletes their read-model rows (with the
order's session when it has one; the runtime erases before the answer's transaction, without
one, and answers with the counts kept). Held categories are kept: a `consent` hold keeps
the consent rows (proof of consent, a legal obligation), a `usage` hold keeps the analytics
events and therefore the key, since their contents live only encrypted under it.
"""

from __future__ import annotations

from typing import Any

from mmgen.consent.adapters.read_models import (
    CONSENT_ROW_FIELDS,
    ConsentReadModel,
    TrackingReadModel,
)
from mmgen.consent.domain.model import consent_stream
from mmgen.events.envelope import utc_now
from mmgen.events.erased import is_erased
from mmgen.events.keys import Keystore
from mmgen.events.mapper import DomainEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.runtime.contract import (
    ExportedActor,
    ExportedEvent,
    Footprint,
    SubjectExport,
    owner_of_subject,
)
from mmgen.runtime.erasure import AnonymizationOutcome, AnonymizeOrder, EraseOrder, ErasureOutcome

SERVICE = "consent"
CONSENT, USAGE = "consent", "usage"
#: The categories consent holds data in: decisions (and their evidence), analytics events.
CATEGORIES = (CONSENT, USAGE)


def exported_event(event: DomainEvent[Any]) -> ExportedEvent:
    """A stored event as the export shows it: header, public data, personal part decrypted."""
    envelope = event.envelope
    personal: dict[str, Any] | None = None
    if event.erased:
        personal = {"erased": True}
    elif event.personal is not None:
        personal = event.personal.model_dump(mode="json")
    return ExportedEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        occurred_at=envelope.occurred_at,
        action=envelope.action,
        actor=(
            ExportedActor(id=envelope.actor.id, role=envelope.actor.role)
            if envelope.actor
            else None
        ),
        purpose=envelope.purpose,
        categories=list(envelope.categories),
        data=event.data.model_dump(mode="json"),
        personal=personal,
    )


class ConsentErasure:
    """The consent service's `ErasureParticipant`."""

    def __init__(
        self,
        repository: EventSourcedRepository,
        keystore: Keystore,
        consents: ConsentReadModel,
        tracking: TrackingReadModel,
        *,
        max_export_events: int = 1000,
    ) -> None:
        self.repository = repository
        self.keystore = keystore
        self.consents = consents
        self.tracking = tracking
        self.max_export_events = max_export_events

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        """Shred the key unless `usage` is held; delete the rows of the categories not held.

        Each step is idempotent, so a redelivered command changes nothing more."""
        subject, held = order.subject_id, sorted(order.categories_held & set(CATEGORIES))
        shredded = 0
        if USAGE not in held:
            shredded = int(
                await self.keystore.shred(owner_of_subject(subject), by=order.command.event_id)
            )
        deleted: dict[str, int] = {}
        if CONSENT not in held:
            deleted[CONSENT] = await self.consents.delete_subject(subject, session=order.session)
        if USAGE not in held:
            deleted[USAGE] = await self.tracking.delete_subject(subject, session=order.session)
        return ErasureOutcome(keys_shredded=shredded, records_deleted=deleted, categories_held=held)

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        """Consent owns no anonymisable resources: the answer counts nothing."""
        return AnonymizationOutcome()

    async def _tracked_events(self, subject_id: str) -> list[DomainEvent[Any]]:
        """The subject's analytics events from the store, decrypted (or marked erased)."""
        found = []
        for row in await self.tracking.of_subject(subject_id, self.max_export_events):
            envelope = await self.repository.store.get(row.event_id)
            if envelope is not None:
                found.append(envelope)
        return await self.repository.decode(found)

    async def export(self, subject_id: str) -> SubjectExport:
        """Everything held on the subject, decrypted, machine-readable (Art. 15 / 20):
        current records keyed `consent:<purpose>` / `tracking_event:<id>`, and the stored
        events behind them (the consent history and the analytics events)."""
        records: dict[str, Any] = {}
        for state in await self.consents.of_subject(subject_id):
            records[f"consent:{state.purpose}"] = {
                "purpose": state.purpose,
                "granted": state.granted,
                "policy_version": state.policy_version,
                "method": state.method,
                "decided_at": state.decided_at,
            }
        for row in await self.tracking.of_subject(subject_id, self.max_export_events):
            records[f"tracking_event:{row.event_id}"] = {
                "name": row.name,
                "received_at": row.received_at,
            }
        history = await self.repository.load(consent_stream(subject_id))
        events = [*history, *await self._tracked_events(subject_id)]
        return SubjectExport(
            service=SERVICE,
            subject_id=subject_id,
            generated_at=utc_now(),
            erased=await self.keystore.is_erased(owner_of_subject(subject_id)),
            records=records,
            events=[exported_event(e) for e in events[: self.max_export_events]],
            events_truncated=len(events) > self.max_export_events,
        )

    async def footprint(self, subject_id: str) -> Footprint:
        """Per category: records held and personal values still readable (zero after erasure,
        outside held categories). A consent row's fields are readable; so is every decrypted
        evidence value of the consent history, and an analytics event's page and properties."""
        erased = await self.keystore.is_erased(owner_of_subject(subject_id))
        rows = await self.consents.of_subject(subject_id)
        consent_records = len(rows)
        consent_fields = sum(
            1 for row in rows for name in CONSENT_ROW_FIELDS if getattr(row, name) is not None
        )
        if not erased:
            for event in await self.repository.load(consent_stream(subject_id)):
                if event.personal is not None and not is_erased(event.personal):
                    consent_records += 1
                    values = event.personal.model_dump().values()
                    consent_fields += sum(1 for v in values if v is not None)
        usage_records = await self.tracking.count(subject_id)
        usage_fields = usage_records  # each row names an event the subject caused
        if not erased and usage_records:
            for event in await self._tracked_events(subject_id):
                if event.personal is not None and not is_erased(event.personal):
                    usage_fields += int(event.personal.page is not None)
                    usage_fields += int(bool(event.personal.properties))
        return Footprint.of(
            SERVICE,
            subject_id,
            key_erased=erased,
            records={CONSENT: consent_records, USAGE: usage_records},
            readable={CONSENT: consent_fields, USAGE: usage_fields},
        )

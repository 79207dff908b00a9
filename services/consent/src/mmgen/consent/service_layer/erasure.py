"""The erasure contract (DESIGN.md): erase a subject, export what we hold, measure the footprint.

Erasure shreds the subject's data key (every copy of their encrypted fields — event store,
Kafka, backups — becomes unreadable at once), deletes their read-model rows, and answers with a
`consent.SubjectErased` event carrying only counts. Held categories are kept: a `consent` hold
keeps the consent records (proof of consent, a legal obligation), a `usage` hold keeps the
analytics events and therefore the key, since their contents live only encrypted.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from mmgen.consent.adapters.read_models import ConsentReadModel, TrackingReadModel
from mmgen.consent.domain.events import (
    ConsentGranted,
    ConsentWithdrawn,
    ResourceAnonymized,
    SubjectErased,
)
from mmgen.consent.domain.model import consent_stream
from mmgen.consent.service_layer.consents import owner_of
from mmgen.events.envelope import Envelope
from mmgen.events.erased import is_erased
from mmgen.events.errors import ConcurrencyError
from mmgen.events.keys import Keystore
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository

log = logging.getLogger(__name__)

ERASE_SUBJECT = "retention.EraseSubject"
ANONYMIZE_RESOURCE = "retention.AnonymizeResource"
#: Fields of a consent read-model row that say something about the subject.
CONSENT_ROW_FIELDS = ("granted", "policy_version", "method", "decided_at")


def _iso(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value


class ErasureService:
    """Handles `retention.*` commands and serves `/internal/subjects/{id}/export|footprint`."""

    def __init__(
        self,
        repo: EventSourcedRepository,
        keystore: Keystore,
        consents: ConsentReadModel,
        tracking: TrackingReadModel,
        *,
        max_export_events: int = 1000,
    ) -> None:
        self.repo = repo
        self.keystore = keystore
        self.consents = consents
        self.tracking = tracking
        self.max_export_events = max_export_events

    async def handle_command(self, command: Envelope) -> None:
        """Dispatch a `retention.commands` message; other types are not ours to act on."""
        if command.event_type == ERASE_SUBJECT:
            await self.erase_subject(command)
        elif command.event_type == ANONYMIZE_RESOURCE:
            await self.anonymize_resource(command)

    async def erase_subject(self, command: Envelope) -> SubjectErased | None:
        """Idempotent: a redelivered command finds its answer already appended and stops."""
        subject_id = command.subject_id or str(command.data.get("subject_id") or "")
        if not subject_id:
            log.error("EraseSubject %s names no subject", command.event_id)
            return None
        held = sorted({str(c) for c in command.data.get("categories_held") or []})
        owner = owner_of(subject_id)
        shredded = 0
        if "usage" not in held:
            shredded = int(await self.keystore.shred(owner))
        consents_deleted = (
            0 if "consent" in held else await self.consents.delete_subject(subject_id)
        )
        tracking_deleted = 0 if "usage" in held else await self.tracking.delete_subject(subject_id)
        answer = SubjectErased(
            request_id=_opt_str(command.data.get("request_id")),
            keys_shredded=shredded,
            consent_records_deleted=consents_deleted,
            tracking_events_deleted=tracking_deleted,
            categories_held=held,
        )
        try:
            await self.repo.append(
                f"erasure:{command.event_id}",
                0,
                [
                    NewEvent(
                        answer,
                        subject_id=subject_id,
                        resource_id=subject_id,
                        causation_id=command.event_id,
                        correlation_id=command.correlation_id or command.event_id,
                    )
                ],
            )
        except ConcurrencyError:
            log.info("EraseSubject %s was answered before", command.event_id)
            return None
        log.info("subject erased", extra={"request_id": answer.request_id, "keys": shredded})
        return answer

    async def anonymize_resource(self, command: Envelope) -> None:
        """This service owns no anonymisable resources; it still answers, with a zero count."""
        resource = command.data.get("resource") or {}
        with contextlib.suppress(ConcurrencyError):  # answered before
            await self.repo.append(
                f"anonymization:{command.event_id}",
                0,
                [
                    NewEvent(
                        ResourceAnonymized(
                            request_id=_opt_str(command.data.get("request_id")),
                            resource_type=str(resource.get("type") or "unknown"),
                            resource_id=str(resource.get("id") or "unknown"),
                            records_anonymized=0,
                        ),
                        resource_id=str(resource.get("id") or command.event_id),
                        causation_id=command.event_id,
                        correlation_id=command.correlation_id or command.event_id,
                    )
                ],
            )

    # --- export and footprint ----------------------------------------------------------------

    async def export(self, subject_id: str) -> dict[str, Any]:
        """Everything held on the subject, decrypted, machine-readable (Art. 15 / 20)."""
        current = [
            {k: _iso(doc.get(k)) for k in ("purpose", *CONSENT_ROW_FIELDS)}
            for doc in await self.consents.of_subject(subject_id)
        ]
        history = []
        for event in await self.repo.load(consent_stream(subject_id)):
            if not isinstance(event.data, ConsentGranted | ConsentWithdrawn):
                continue
            evidence = event.personal
            history.append(
                {
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "purpose": event.data.purpose,
                    "policy_version": event.data.policy_version,
                    "method": event.data.method,
                    "occurred_at": _iso(event.occurred_at),
                    "evidence": (
                        {"erased": True}
                        if is_erased(evidence)
                        else evidence.model_dump()
                        if evidence is not None
                        else None
                    ),
                }
            )
        tracked = []
        for row in await self.tracking.of_subject(subject_id, self.max_export_events):
            envelope = await self.repo.store.get(str(row["_id"]))
            content: Any = None
            if envelope is not None:
                (event,) = await self.repo.decode([envelope])
                content = (
                    {"erased": True} if is_erased(event.personal) else event.personal.model_dump()
                )
            tracked.append(
                {
                    "event_id": row["_id"],
                    "name": row["name"],
                    "received_at": _iso(row["received_at"]),
                    "content": content,
                }
            )
        return {
            "subject_id": subject_id,
            "service": "consent",
            "erased": await self.keystore.is_erased(owner_of(subject_id)),
            "consents": current,
            "consent_history": history,
            "tracking_events": tracked,
        }

    async def footprint(self, subject_id: str) -> dict[str, Any]:
        """Per category: records held and personal fields still readable (zero after erasure)."""
        erased = await self.keystore.is_erased(owner_of(subject_id))
        rows = await self.consents.of_subject(subject_id)
        consent_fields = sum(
            1 for row in rows for k in CONSENT_ROW_FIELDS if row.get(k) is not None
        )
        consent_events = 0
        if not erased:
            for event in await self.repo.load(consent_stream(subject_id)):
                if event.personal is not None and not is_erased(event.personal):
                    consent_events += 1
                    consent_fields += sum(
                        1 for v in event.personal.model_dump().values() if v is not None
                    )
        tracking_rows = await self.tracking.count(subject_id)
        usage_fields = tracking_rows  # each row names an event the subject caused
        if not erased and tracking_rows:
            for row in await self.tracking.of_subject(subject_id, self.max_export_events):
                envelope = await self.repo.store.get(str(row["_id"]))
                if envelope is None:
                    continue
                (event,) = await self.repo.decode([envelope])
                if not is_erased(event.personal):
                    usage_fields += int(event.personal.page is not None) + int(
                        bool(event.personal.properties)
                    )
        categories = {
            "consent": {
                "records": len(rows) + consent_events,
                "readable_personal_fields": consent_fields,
            },
            "usage": {"records": tracking_rows, "readable_personal_fields": usage_fields},
        }
        return {
            "subject_id": subject_id,
            "service": "consent",
            "key_erased": erased,
            "categories": categories,
            "total_records": sum(c["records"] for c in categories.values()),
            "total_readable_personal_fields": sum(
                c["readable_personal_fields"] for c in categories.values()
            ),
        }


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)

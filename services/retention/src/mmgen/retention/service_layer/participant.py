"""Retention's own part of the erasure contract: it holds personal data too.

What retention keeps on a subject, all under the category `account`:
- what the subject wrote in their requests (a rectification's details, the resolution note):
  personal fields of its events, encrypted under the subject's data key;
- access packages: the whole Art. 15 package, encrypted under the same key until it expires.

Erasure shreds the subject's key (the details, notes and packages become unreadable at once,
in every copy) and deletes the stored packages. The requests themselves stay: their ids,
statuses, deadlines and timelines are the controller's evidence that it answered (GDPR
Art. 5(2)) and carry no personal values. An `account` hold keeps the key and the packages.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.keys import Keystore
from mmgen.events.mapper import DomainEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.requests import request_stream
from mmgen.retention.service_layer.ports import Clock, HoldViews, PackageStore, RequestViews
from mmgen.runtime.contract import (
    ExportedActor,
    ExportedEvent,
    Footprint,
    SubjectExport,
    owner_of_subject,
)
from mmgen.runtime.erasure import AnonymizationOutcome, AnonymizeOrder, EraseOrder, ErasureOutcome

SERVICE = "retention"
ACCOUNT = "account"
MAX_REQUESTS = 200


def _exported(event: DomainEvent[Any]) -> ExportedEvent:
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
        actor=ExportedActor(id=envelope.actor.id, role=envelope.actor.role)
        if envelope.actor
        else None,
        purpose=envelope.purpose,
        categories=list(envelope.categories),
        data=event.data.model_dump(mode="json"),
        personal=personal,
    )


def _readable(event: DomainEvent[Any]) -> int:
    """Personal values of an event that still decrypt (none once the key is shredded)."""
    if event.personal is None or event.erased:
        return 0
    values = event.personal.model_dump()
    return sum(1 for v in values.values() if v is not None and not is_erased(v))


def _hold(hold: HoldView) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "categories": list(hold.categories),
        "legal_basis": hold.legal_basis,
        "until": None if hold.until is None else hold.until.isoformat(),
    }


class RetentionErasure:
    """The retention service's `ErasureParticipant`."""

    def __init__(
        self,
        *,
        repository: EventSourcedRepository,
        keystore: Keystore,
        views: RequestViews,
        packages: PackageStore,
        holds: HoldViews,
        clock: Clock,
    ) -> None:
        self.repository = repository
        self.keystore = keystore
        self.views = views
        self.packages = packages
        self.holds = holds
        self.clock = clock

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        """Shred the subject's key and delete their packages, unless `account` is held.

        Both steps are idempotent: a redelivered command changes nothing more."""
        if ACCOUNT in order.categories_held:
            return ErasureOutcome(categories_held=[ACCOUNT])
        shredded = int(
            await self.keystore.shred(owner_of_subject(order.subject_id), by=order.command.event_id)
        )
        deleted = await self.packages.delete_subject(order.subject_id)
        return ErasureOutcome(keys_shredded=shredded, records_deleted={ACCOUNT: deleted})

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        """Retention owns no resource that can be anonymised: the answer counts nothing."""
        return AnonymizationOutcome()

    async def _history(self, subject_id: str) -> tuple[list[dict[str, Any]], list[Any]]:
        views = await self.views.of_subject(subject_id, MAX_REQUESTS)
        events: list[DomainEvent[Any]] = []
        for view in views:
            events.extend(await self.repository.load(request_stream(str(view["_id"]))))
        return views, events

    async def export(self, subject_id: str) -> SubjectExport:
        """The subject's requests with their steps and what they wrote (decrypted), and the
        legal holds on their data."""
        views, events = await self._history(subject_id)
        holds = (await self.holds.of_subjects([subject_id])).get(subject_id, [])
        requests = [
            {
                "request_id": view["request_id"],
                "type": view["type"],
                "status": view["status"],
                "received_at": view["received_at"].isoformat(),
                "due_on": view["due_on"],
                "requested_by_role": view["requested_by_role"],
            }
            for view in views
        ]
        return SubjectExport(
            service=SERVICE,
            subject_id=subject_id,
            generated_at=self.clock.now(),
            erased=await self.keystore.is_erased(owner_of_subject(subject_id)),
            records={"privacy_requests": requests, "legal_holds": [_hold(h) for h in holds]},
            events=[_exported(e) for e in events],
        )

    async def footprint(self, subject_id: str) -> Footprint:
        """`account`: requests and stored packages; readable: decryptable details and notes,
        and packages while the key lives."""
        views, events = await self._history(subject_id)
        erased = await self.keystore.is_erased(owner_of_subject(subject_id))
        packages = await self.packages.count_subject(subject_id)
        readable = sum(_readable(e) for e in events) + (0 if erased else packages)
        return Footprint.of(
            SERVICE,
            subject_id,
            key_erased=erased,
            records={ACCOUNT: len(views) + packages},
            readable={ACCOUNT: readable},
        )

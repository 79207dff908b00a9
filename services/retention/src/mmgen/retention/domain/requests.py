"""The privacy request aggregate: a subject's access, erasure or rectification request.

Statuses and the only moves between them:

| from | to |
|---|---|
| received | in_progress, completed (rectification), overdue, rejected |
| in_progress | completed (access, rectification), partially_completed, verified, overdue |
| overdue | completed, partially_completed, verified, rejected |
| partially_completed | in_progress (a hold ended: the held part is ordered erased), verified |
| completed, verified, rejected | — (final) |

An erasure never becomes ``completed``: it is ``verified`` (every service acknowledged and
every footprint shows zero readable personal data) or ``partially_completed`` (the same
outside the categories under a legal hold). Access and rectification are ``completed``.
A request answered in time (partially or wholly) is never overdue afterwards, even while a
released hold's remainder is being erased; work on an overdue request leaves it overdue
until it ends. The timeline lists every step with its time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from mmgen.events.envelope import Actor
from mmgen.events.erased import is_erased
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData
from mmgen.events.repository import Aggregate
from mmgen.retention.domain.deadlines import Deadline, utc_day
from mmgen.retention.domain.errors import (
    IllegalTransitionError,
    RequestInvalidError,
    RequestTypeMismatchError,
)
from mmgen.retention.domain.events import (
    AccessCollectionStarted,
    AccessPackageReady,
    AcknowledgementData,
    DeadlineExtended,
    ErasureAcknowledged,
    ErasureOrdered,
    ErasurePartiallyCompleted,
    ErasureVerified,
    HeldCategoryData,
    PrivacyRequestOverdue,
    PrivacyRequestReceived,
    PrivacyRequestRejected,
    RectificationResolved,
    RequestDetails,
    RequestType,
    Resolution,
    ServiceCheck,
)
from mmgen.retention.domain.progress import ErasureProgress, acknowledgement_counts

MAX_DETAILS = 4000
MAX_REASON = 1000
_COMMAND_NAMESPACE = uuid.UUID("b8f0e6f4-2a43-4b8e-8d3c-51c1f7c2a9d0")


class RequestStatus(StrEnum):
    received = "received"
    in_progress = "in_progress"
    completed = "completed"
    partially_completed = "partially_completed"
    verified = "verified"
    overdue = "overdue"
    rejected = "rejected"


S = RequestStatus
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.received: frozenset({S.in_progress, S.completed, S.overdue, S.rejected}),
    S.in_progress: frozenset({S.completed, S.partially_completed, S.verified, S.overdue}),
    S.overdue: frozenset({S.completed, S.partially_completed, S.verified, S.rejected}),
    S.partially_completed: frozenset({S.in_progress, S.verified}),
    S.completed: frozenset(),
    S.verified: frozenset(),
    S.rejected: frozenset(),
}
FINAL = frozenset({S.completed, S.verified, S.rejected})
#: Statuses each type of request can ever take.
STATUSES_OF: dict[str, frozenset[RequestStatus]] = {
    "access": frozenset({S.received, S.in_progress, S.completed, S.overdue, S.rejected}),
    "rectification": frozenset({S.received, S.in_progress, S.completed, S.overdue, S.rejected}),
    "erasure": frozenset(
        {S.received, S.in_progress, S.partially_completed, S.verified, S.overdue, S.rejected}
    ),
}
#: Statuses in which an erasure order can be (re)sent.
ORDERABLE = frozenset({S.received, S.in_progress, S.overdue, S.partially_completed})


def request_stream(request_id: str) -> str:
    return f"privacy-request:{request_id}"


def command_id_for(request_id: str, attempt: int) -> str:
    """The erasure command of an attempt: derived, so a repeated step sends the same command."""
    return str(uuid.uuid5(_COMMAND_NAMESPACE, f"{request_id}:{attempt}"))


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    step: str
    status: RequestStatus
    detail: dict[str, Any] = field(default_factory=dict)


class PrivacyRequest(Aggregate):
    """One request, folded from its events."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.request_id = stream_id.removeprefix("privacy-request:")
        self.request_type: RequestType = "access"
        self.subject_id = ""
        self.requested_by = ""
        self.requested_by_role = ""
        self.on_behalf = False
        self.status = RequestStatus.received
        self.received_at: datetime | None = None
        self.deadline: Deadline | None = None
        self.details: Any = None
        self.timeline: list[TimelineEntry] = []
        self.orders: list[ErasureOrdered] = []
        self.acknowledgements: dict[str, AcknowledgementData] = {}
        self.seen_acknowledgements: set[str] = set()
        self.held: list[HeldCategoryData] = []
        self.checks: list[ServiceCheck] = []
        self.answered_at: datetime | None = None
        self.concluded_at: datetime | None = None
        self.package_id: str | None = None
        self.package_expires_at: datetime | None = None
        self.access_services: list[str] = []
        self.rejection_reason: str | None = None
        self.resolution: Any = None

    # --- folding -------------------------------------------------------------------------------

    def _step(self, at: datetime, step: str, **detail: Any) -> None:
        self.timeline.append(TimelineEntry(at, step, self.status, detail))

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case PrivacyRequestReceived():
                self.request_type, self.subject_id = data.request_type, data.subject_id
                self.requested_by, self.requested_by_role = (
                    data.requested_by,
                    data.requested_by_role,
                )
                self.on_behalf = data.on_behalf
                self.received_at = data.received_at
                self.deadline = Deadline(utc_day(data.received_at), data.due_on)
                self.details = None if personal is None else personal.details
                self._step(data.received_at, "received", due_on=data.due_on.isoformat())
            case ErasureOrdered():
                self.orders.append(data)
                self.held = list(data.categories_held)
                if self.status in (S.received, S.partially_completed):
                    self.status = S.in_progress
                self._step(
                    data.ordered_at,
                    "erasure_ordered",
                    attempt=data.attempt,
                    services=list(data.services),
                    categories_held=sorted({h.category for h in data.categories_held}),
                    reason=data.reason,
                )
            case ErasureAcknowledged(acknowledgement=ack):
                self.seen_acknowledgements.add(ack.event_id)
                current = self.acknowledgements.get(ack.service)
                if current is None or ack.audit_seq > current.audit_seq:
                    self.acknowledgements[ack.service] = ack
                self._step(
                    ack.acknowledged_at,
                    "acknowledged",
                    service=ack.service,
                    audit_seq=ack.audit_seq,
                    keys_shredded=ack.keys_shredded,
                )
            case ErasurePartiallyCompleted():
                self.status = S.partially_completed
                self.held, self.checks = list(data.held), list(data.checks)
                self.concluded_at = data.concluded_at
                self.answered_at = self.answered_at or data.concluded_at
                self._step(
                    data.concluded_at,
                    "partially_completed",
                    held=[h.model_dump(mode="json") for h in data.held],
                )
            case ErasureVerified():
                self.status = S.verified
                self.held, self.checks = [], list(data.checks)
                self.concluded_at = data.verified_at
                self.answered_at = self.answered_at or data.verified_at
                self._step(data.verified_at, "verified", services=[c.service for c in data.checks])
            case AccessCollectionStarted():
                self.access_services = list(data.services)
                if self.status is S.received:
                    self.status = S.in_progress
                self._step(data.started_at, "collection_started", services=list(data.services))
            case AccessPackageReady():
                self.status = S.completed
                self.package_id, self.package_expires_at = data.package_id, data.expires_at
                self.answered_at = self.answered_at or data.ready_at
                self.concluded_at = data.ready_at
                self._step(
                    data.ready_at,
                    "package_ready",
                    services=list(data.services),
                    expires_at=data.expires_at.isoformat(),
                )
            case RectificationResolved():
                self.status = S.completed
                self.resolution = None if personal is None else personal.note
                self.answered_at = self.answered_at or data.resolved_at
                self.concluded_at = data.resolved_at
                self._step(data.resolved_at, "resolved", service=data.service)
            case DeadlineExtended():
                assert self.deadline is not None
                self.deadline = Deadline(
                    self.deadline.received_on,
                    data.due_on,
                    data.months,
                    data.reason,
                    utc_day(data.extended_at),
                )
                self._step(
                    data.extended_at,
                    "deadline_extended",
                    months=data.months,
                    due_on=data.due_on.isoformat(),
                    reason=data.reason,
                )
            case PrivacyRequestOverdue():
                self.status = S.overdue
                self._step(data.detected_at, "overdue", due_on=data.due_on.isoformat())
            case PrivacyRequestRejected():
                self.status = S.rejected
                self.rejection_reason = data.reason
                self.concluded_at = data.rejected_at
                self._step(data.rejected_at, "rejected", reason=data.reason)

    # --- decisions -----------------------------------------------------------------------------

    @classmethod
    def receive(
        cls,
        request_id: str,
        *,
        request_type: RequestType,
        subject_id: str,
        requested_by: Actor,
        details: str | None,
        now: datetime,
    ) -> PrivacyRequest:
        text = (details or "").strip() or None
        if text is not None and len(text) > MAX_DETAILS:
            raise RequestInvalidError(f"details are limited to {MAX_DETAILS} characters")
        request = cls(request_stream(request_id))
        request.record(
            NewEvent(
                PrivacyRequestReceived(
                    request_type=request_type,
                    subject_id=subject_id,
                    requested_by=requested_by.id,
                    requested_by_role=requested_by.role,
                    on_behalf=requested_by.id != subject_id,
                    received_at=now,
                    due_on=Deadline.for_receipt(now).due_on,
                ),
                personal=RequestDetails(details=text) if text is not None else None,
                subject_id=subject_id,
                actor=requested_by,
                resource_id=request_id,
            )
        )
        return request

    def _event(self, data: EventData, actor: Actor | None = None, **kwargs: Any) -> None:
        self.record(
            NewEvent(
                data,
                subject_id=self.subject_id,
                actor=actor,
                purpose="legal_compliance",
                resource_id=self.request_id,
                **kwargs,
            )
        )

    def _require_type(self, *types: str) -> None:
        if self.request_type not in types:
            raise RequestTypeMismatchError(
                f"privacy request {self.request_id} is a {self.request_type} request"
            )

    def _require_move(self, to: RequestStatus) -> None:
        if to not in TRANSITIONS[self.status] or to not in STATUSES_OF[self.request_type]:
            raise IllegalTransitionError(self.request_id, self.status.value, to.value)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def open(self) -> bool:
        """Still being worked on (a partially completed erasure waits for its holds)."""
        return not self.final

    @property
    def last_order(self) -> ErasureOrdered | None:
        return self.orders[-1] if self.orders else None

    def acknowledgements_for_last_order(self) -> dict[str, AcknowledgementData]:
        order = self.last_order
        if order is None:
            return {}
        return {
            service: ack
            for service, ack in self.acknowledgements.items()
            if acknowledgement_counts(ack, order)
        }

    def order_erasure(
        self,
        *,
        services: Sequence[str],
        held: Sequence[HeldCategoryData],
        reason: str,
        now: datetime,
    ) -> ErasureOrdered:
        """Send `EraseSubject` (the first time, a retry, or after a hold ended)."""
        self._require_type("erasure")
        if self.status not in ORDERABLE:
            raise IllegalTransitionError(self.request_id, self.status.value, "in_progress")
        if not services:
            raise ValueError("an erasure order needs the services that must answer it")
        attempt = len(self.orders) + 1
        order = ErasureOrdered(
            command_id=command_id_for(self.request_id, attempt),
            attempt=attempt,
            services=sorted(set(services)),
            categories_held=sorted(held, key=lambda h: (h.category, h.hold_id)),
            reason=reason,
            ordered_at=now,
        )
        self._event(order)
        return order

    def acknowledge(self, ack: AcknowledgementData) -> bool:
        """Record a service's `SubjectErased` (once per event); False if seen before."""
        self._require_type("erasure")
        if ack.event_id in self.seen_acknowledgements:
            return False
        if not self.orders or self.status in (S.rejected,):
            raise IllegalTransitionError(self.request_id, self.status.value, "acknowledged")
        self._event(ErasureAcknowledged(acknowledgement=ack))
        return True

    def conclude(self, progress: ErasureProgress, now: datetime) -> bool:
        """Record what the progress allows: partially completed or verified (else nothing)."""
        self._require_type("erasure")
        order = self.last_order
        if order is None or progress.outcome == "in_progress":
            return False
        if progress.held != tuple(order.categories_held):
            raise ValueError("the progress was assessed against another order")
        if progress.outcome == "verified":
            if self.status is S.verified:
                return False
            self._require_move(S.verified)
            self._event(ErasureVerified(checks=progress.checks(), verified_at=now))
            return True
        if self.status is S.partially_completed:
            return False
        self._require_move(S.partially_completed)
        self._event(
            ErasurePartiallyCompleted(
                held=list(progress.held), checks=progress.checks(), concluded_at=now
            )
        )
        return True

    def start_collection(self, services: Sequence[str], now: datetime) -> None:
        self._require_type("access")
        if self.status is S.received:
            self._require_move(S.in_progress)
        elif self.status not in (S.in_progress, S.overdue):
            raise IllegalTransitionError(self.request_id, self.status.value, "in_progress")
        self._event(AccessCollectionStarted(services=sorted(services), started_at=now))

    def package_ready(
        self, package_id: str, services: Sequence[str], expires_at: datetime, now: datetime
    ) -> None:
        self._require_type("access")
        self._require_move(S.completed)
        self._event(
            AccessPackageReady(
                package_id=package_id,
                services=sorted(services),
                expires_at=expires_at,
                ready_at=now,
            )
        )

    def resolve(self, *, service: str, note: str, by: Actor, now: datetime) -> None:
        self._require_type("rectification")
        self._require_move(S.completed)
        text = note.strip()
        if not text or len(text) > MAX_DETAILS:
            raise RequestInvalidError(
                f"a resolution note of 1 to {MAX_DETAILS} characters is needed"
            )
        self._event(
            RectificationResolved(service=service, resolved_by=by.id, resolved_at=now),
            actor=by,
            personal=Resolution(note=text),
        )

    def extend_deadline(self, *, months: int, reason: str | None, by: Actor, now: datetime) -> None:
        """One extension of 1-2 months with a reason (`ExtensionInvalidError` otherwise)."""
        if self.final or self.answered_at is not None:
            raise IllegalTransitionError(self.request_id, self.status.value, "extended")
        assert self.deadline is not None
        extended = self.deadline.extend(months, reason, now)
        self._event(
            DeadlineExtended(
                months=months,
                due_on=extended.due_on,
                reason=extended.extension_reason or "",
                extended_by=by.id,
                extended_at=now,
            ),
            actor=by,
        )

    def is_overdue(self, now: datetime) -> bool:
        """Past its deadline, unanswered and still open."""
        return (
            self.deadline is not None
            and self.answered_at is None
            and not self.final
            and self.deadline.is_overdue(now)
        )

    def mark_overdue(self, now: datetime) -> bool:
        if self.status is S.overdue or not self.is_overdue(now):
            return False
        self._require_move(S.overdue)
        assert self.deadline is not None
        self._event(PrivacyRequestOverdue(due_on=self.deadline.due_on, detected_at=now))
        return True

    def reject(self, *, reason: str, by: Actor, now: datetime) -> None:
        text = reason.strip()
        if not text or len(text) > MAX_REASON:
            raise RequestInvalidError(
                f"a rejection needs its reason (1 to {MAX_REASON} characters)"
            )
        self._require_move(S.rejected)
        self._event(
            PrivacyRequestRejected(reason=text, rejected_by=by.id, rejected_at=now), actor=by
        )

    # --- views ---------------------------------------------------------------------------------

    @property
    def due_on(self) -> date | None:
        return None if self.deadline is None else self.deadline.due_on

    def view(self) -> dict[str, Any]:
        """The request as its read model stores it (no personal values: details stay in the
        event store, encrypted)."""
        deadline = self.deadline
        return {
            "_id": self.request_id,
            "request_id": self.request_id,
            "type": self.request_type,
            "subject_id": self.subject_id,
            "requested_by": self.requested_by,
            "requested_by_role": self.requested_by_role,
            "on_behalf": self.on_behalf,
            "status": self.status.value,
            "open": self.open,
            "received_at": self.received_at,
            "due_on": None if deadline is None else deadline.due_on.isoformat(),
            "due_by": None if deadline is None else deadline.due_by,
            "extension": None
            if deadline is None or not deadline.extended
            else {
                "months": deadline.extension_months,
                "reason": deadline.extension_reason,
                "extended_on": None
                if deadline.extended_on is None
                else deadline.extended_on.isoformat(),
            },
            "answered_at": self.answered_at,
            "concluded_at": self.concluded_at,
            "timeline": [
                {"at": t.at, "step": t.step, "status": t.status.value, "detail": t.detail}
                for t in self.timeline
            ],
            "acknowledgements": {
                service: ack.model_dump(mode="python")
                for service, ack in sorted(self.acknowledgements_for_last_order().items())
            },
            "expected_services": [] if self.last_order is None else list(self.last_order.services),
            "held": [h.model_dump(mode="python") for h in self.held],
            "checks": [c.model_dump(mode="python") for c in self.checks],
            "attempts": len(self.orders),
            "package_id": self.package_id,
            "package_expires_at": self.package_expires_at,
            "rejection_reason": self.rejection_reason,
            "has_details": self.details is not None and not is_erased(self.details),
            "version": self.version + len(self.pending),
        }

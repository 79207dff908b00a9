"""The privacy request: status machine, erasure progress, holds, deadlines, replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mmgen.events.envelope import Actor
from mmgen.events.kernel import in_memory_kernel
from mmgen.retention.domain.errors import (
    ExtensionInvalidError,
    IllegalTransitionError,
    RequestTypeMismatchError,
)
from mmgen.retention.domain.events import (
    AcknowledgementData,
    HeldCategoryData,
    retention_registry,
)
from mmgen.retention.domain.progress import ServiceState, assess_erasure, readable_outside
from mmgen.retention.domain.requests import TRANSITIONS, PrivacyRequest, RequestStatus
from mmgen.runtime.contract import Footprint

T0 = datetime(2027, 1, 31, 9, tzinfo=UTC)
SERVICES = ("consent", "identity", "profiles", "projects")
BOUND = timedelta(seconds=30)


def _subject() -> str:
    return str(uuid.uuid4())


def _request(kind: str = "erasure", subject: str | None = None) -> PrivacyRequest:
    sid = subject or _subject()
    return PrivacyRequest.receive(
        str(uuid.uuid4()),
        request_type=kind,  # type: ignore[arg-type]
        subject_id=sid,
        requested_by=Actor(id=sid, role="creator"),
        details="my phone number is wrong" if kind == "rectification" else None,
        now=T0,
    )


def _ack(request: PrivacyRequest, service: str, seq: int, at: datetime) -> AcknowledgementData:
    order = request.last_order
    assert order is not None
    return AcknowledgementData(
        service=service,
        event_id=str(uuid.uuid4()),
        command_id=order.command_id,
        audit_seq=seq,
        keys_shredded=1,
        records_deleted={"contact": 1},
        categories_held=sorted({h.category for h in order.categories_held}),
        acknowledged_at=at,
    )


def _footprint(service: str, subject: str, **readable: int) -> Footprint:
    return Footprint.of(
        service,
        subject,
        key_erased=not any(readable.values()),
        records=readable,
        readable=readable,
    )


HOLD = HeldCategoryData(category="payment", hold_id="hold-1", legal_basis="tax law", until=None)


def test_receipt_sets_the_deadline_and_timeline() -> None:
    request = _request()
    assert request.status is RequestStatus.received
    assert request.due_on is not None and request.due_on.isoformat() == "2027-02-28"
    assert [t.step for t in request.timeline] == ["received"]
    assert not request.on_behalf


def test_transition_table_is_closed_and_final_states_have_no_exit() -> None:
    assert set(TRANSITIONS) == set(RequestStatus)
    for final in (RequestStatus.completed, RequestStatus.verified, RequestStatus.rejected):
        assert TRANSITIONS[final] == frozenset()


def test_erasure_verified_only_when_every_service_acknowledged_and_is_clean() -> None:
    request = _request()
    order = request.order_erasure(services=SERVICES, held=[], reason="subject asked", now=T0)
    assert request.status is RequestStatus.in_progress
    at = T0 + timedelta(seconds=2)
    for seq, service in enumerate(SERVICES[:3]):
        assert request.acknowledge(_ack(request, service, seq, at))
    acks = request.acknowledgements_for_last_order()
    clean = {s: _footprint(s, request.subject_id) for s in SERVICES}
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=acks,
        footprints=clean,
        now=at,
        ack_timeout=BOUND,
    )
    assert progress.outcome == "in_progress"
    assert {s.service: s.state for s in progress.services}["projects"] is ServiceState.pending
    assert not request.conclude(progress, at)  # nothing reported early
    assert request.status is RequestStatus.in_progress

    request.acknowledge(_ack(request, "projects", 3, at))
    residual = {**clean, "profiles": _footprint("profiles", request.subject_id, sensitive=2)}
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints=residual,
        now=at,
        ack_timeout=BOUND,
    )
    states = {s.service: s.state for s in progress.services}
    assert states["profiles"] is ServiceState.residual
    assert progress.outcome == "in_progress"

    missing = {k: v for k, v in clean.items() if k != "identity"}
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints=missing,
        now=at,
        ack_timeout=BOUND,
    )
    assert {s.service: s.state for s in progress.services}["identity"] is (
        ServiceState.acknowledged
    )
    assert progress.outcome == "in_progress"

    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints=clean,
        now=at,
        ack_timeout=BOUND,
    )
    assert progress.outcome == "verified"
    assert request.conclude(progress, at)
    assert request.status is RequestStatus.verified
    assert [c.readable_outside_held for c in request.checks] == [0, 0, 0, 0]
    with pytest.raises(IllegalTransitionError):
        request.order_erasure(services=SERVICES, held=[], reason="again", now=at)


def test_a_footprint_of_another_subject_or_service_does_not_count() -> None:
    request = _request()
    order = request.order_erasure(services=("identity",), held=[], reason="asked", now=T0)
    request.acknowledge(_ack(request, "identity", 0, T0))
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints={"identity": _footprint("identity", _subject())},
        now=T0,
        ack_timeout=BOUND,
    )
    assert progress.outcome == "in_progress"


def test_uncategorised_readable_fields_count_as_outside_every_hold() -> None:
    footprint = Footprint.of(
        "projects", "s", key_erased=False, records={"payment": 1}, readable={"payment": 2}
    ).model_copy(update={"readable_personal_fields": 3})
    assert readable_outside(footprint, frozenset({"payment"})) == 1
    assert readable_outside(footprint, frozenset()) == 3


def test_unacknowledged_service_is_to_retry_after_the_bound() -> None:
    request = _request()
    order = request.order_erasure(services=SERVICES, held=[], reason="asked", now=T0)
    later = T0 + BOUND
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements={},
        footprints={},
        now=later,
        ack_timeout=BOUND,
    )
    assert progress.to_retry == SERVICES
    assert all(s.state is ServiceState.to_retry for s in progress.services)
    assert "no acknowledgement 30 s after the order" in progress.services[0].detail


def test_hold_gives_partially_completed_then_release_gives_verified() -> None:
    request = _request()
    order = request.order_erasure(services=SERVICES, held=[HOLD], reason="asked", now=T0)
    for seq, service in enumerate(SERVICES):
        request.acknowledge(_ack(request, service, seq, T0))
    held_data = {
        s: _footprint(s, request.subject_id, payment=3 if s == "projects" else 0) for s in SERVICES
    }
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=order,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints=held_data,
        now=T0,
        ack_timeout=BOUND,
    )
    assert progress.outcome == "partially_completed"
    assert request.conclude(progress, T0)
    assert request.status is RequestStatus.partially_completed
    assert [h.hold_id for h in request.held] == ["hold-1"]
    projects_check = next(c for c in request.checks if c.service == "projects")
    assert (projects_check.readable_outside_held, projects_check.readable_held) == (0, 3)
    # Answered in time: a late remainder never makes it overdue.
    assert not request.mark_overdue(T0 + timedelta(days=60))

    # The hold ends: the held part is ordered erased; old acknowledgements do not count.
    second = request.order_erasure(
        services=SERVICES, held=[], reason="hold-1 released", now=T0 + timedelta(days=1)
    )
    assert request.status is RequestStatus.in_progress
    assert second.attempt == 2
    assert request.acknowledgements_for_last_order() == {}
    clean = {s: _footprint(s, request.subject_id) for s in SERVICES}
    at = T0 + timedelta(days=1, seconds=3)
    for seq, service in enumerate(SERVICES, start=10):
        request.acknowledge(_ack(request, service, seq, at))
    progress = assess_erasure(
        subject_id=request.subject_id,
        order=second,
        acknowledgements=request.acknowledgements_for_last_order(),
        footprints=clean,
        now=at,
        ack_timeout=BOUND,
    )
    assert progress.outcome == "verified"
    assert request.conclude(progress, at)
    assert request.status is RequestStatus.verified
    assert request.held == []


def test_acknowledgements_are_recorded_once() -> None:
    request = _request()
    request.order_erasure(services=SERVICES, held=[], reason="asked", now=T0)
    ack = _ack(request, "identity", 7, T0)
    assert request.acknowledge(ack)
    assert not request.acknowledge(ack)
    assert len([t for t in request.timeline if t.step == "acknowledged"]) == 1


def test_overdue_detection_and_what_follows() -> None:
    request = _request("access")
    assert not request.mark_overdue(datetime(2027, 2, 28, 23, 59, tzinfo=UTC))
    assert request.mark_overdue(datetime(2027, 3, 1, tzinfo=UTC))
    assert request.status is RequestStatus.overdue
    assert not request.mark_overdue(datetime(2027, 3, 2, tzinfo=UTC))
    request.start_collection(["identity"], datetime(2027, 3, 2, tzinfo=UTC))
    assert request.status is RequestStatus.overdue  # work on it does not hide the delay
    request.package_ready("pkg", ["identity"], T0 + timedelta(days=60), T0 + timedelta(days=31))
    assert request.status is RequestStatus.completed


def test_extension_rules_on_the_request() -> None:
    staff = Actor(id="staff-1", role="staff")
    request = _request("access")
    with pytest.raises(ExtensionInvalidError):
        request.extend_deadline(months=2, reason="  ", by=staff, now=T0)
    request.extend_deadline(months=2, reason="complex: five services", by=staff, now=T0)
    assert request.due_on is not None and request.due_on.isoformat() == "2027-04-30"
    assert not request.mark_overdue(datetime(2027, 3, 15, tzinfo=UTC))
    with pytest.raises(ExtensionInvalidError, match="already"):
        request.extend_deadline(months=1, reason="more", by=staff, now=T0)


def test_type_specific_steps() -> None:
    access = _request("access")
    with pytest.raises(RequestTypeMismatchError):
        access.order_erasure(services=SERVICES, held=[], reason="x", now=T0)
    rect = _request("rectification")
    assert rect.details == "my phone number is wrong"
    rect.resolve(service="identity", note="phone corrected", by=Actor(id="s", role="staff"), now=T0)
    assert rect.status is RequestStatus.completed
    erasure = _request()
    with pytest.raises(RequestTypeMismatchError):
        erasure.package_ready("p", [], T0, T0)
    with pytest.raises(IllegalTransitionError):
        erasure.acknowledge(
            AcknowledgementData(
                service="identity",
                event_id="e",
                audit_seq=1,
                keys_shredded=0,
                acknowledged_at=T0,
            )
        )


def test_rejection_needs_a_reason_and_is_final() -> None:
    request = _request("access")
    staff = Actor(id="c", role="compliance")
    with pytest.raises(ValueError, match="reason"):
        request.reject(reason=" ", by=staff, now=T0)
    request.reject(reason="manifestly excessive: 40 identical requests this week", by=staff, now=T0)
    assert request.status is RequestStatus.rejected
    with pytest.raises(IllegalTransitionError):
        request.start_collection(["identity"], T0)


async def test_the_request_folds_back_from_its_events() -> None:
    kernel = in_memory_kernel(producer="retention", registry=retention_registry())
    request = _request("rectification")
    request.extend_deadline(
        months=1, reason="needs the owner's answer", by=Actor(id="s", role="staff"), now=T0
    )
    await kernel.repository.save(request)
    loaded = await kernel.repository.get(PrivacyRequest, request.id)
    assert loaded is not None
    assert loaded.view() == request.view()
    assert loaded.details == "my phone number is wrong"
    # Shredding the subject's key erases what they wrote; the request's facts remain.
    await kernel.shred(f"subject:{request.subject_id}")
    kernel.keystore.invalidate(f"subject:{request.subject_id}")
    erased = await kernel.repository.get(PrivacyRequest, request.id)
    assert erased is not None
    assert erased.status is RequestStatus.received
    assert erased.view()["has_details"] is False

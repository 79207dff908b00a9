"""The use cases over fakes: erasure to `verified` with a receipt that verifies offline, holds,
stalled services, access packages, policy runs, overdue marking."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from mmgen.auditlog.receipt import evidence_needed, open_receipt, verify_receipt
from mmgen.events.envelope import Actor
from mmgen.retention.adapters.memory import InMemoryAuditLogAnswers
from mmgen.retention.domain.access_package import NO_AUTOMATED_DECISIONS, PACKAGE_SCHEMA
from mmgen.retention.domain.contract import AuditRecord
from mmgen.retention.domain.errors import (
    PackageExpiredError,
    PrivacyRequestNotFoundError,
    ReceiptNotAvailableError,
)
from mmgen.retention.domain.events import AcknowledgementData
from mmgen.retention.domain.policies import SUBJECT_INACTIVE
from mmgen.runtime.contract import ExportedActor, ExportedEvent, Footprint, SubjectExport

from ..harness import ORIGIN, SERVICES, Harness, subject_actor

COMPLIANCE = Actor(id="0195f3a0-0000-7000-8000-00000000c0c0", role="compliance")


async def _erasure(h: Harness, subject: str | None = None) -> tuple[str, str]:
    sid = subject or str(uuid.uuid4())
    view, created = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    assert created
    return sid, view["_id"]


async def _access(h: Harness, sid: str) -> tuple[dict, bool]:
    return await h.requests.submit(request_type="access", subject_id=sid, actor=subject_actor(sid))


async def test_erasure_is_verified_only_after_every_service_answered_and_is_clean(
    h: Harness,
) -> None:
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    assert command.event_type == "retention.EraseSubject"
    assert command.data == {"request_id": rid, "subject_id": sid, "categories_held": []}
    assert (await h.requests.get(rid))["status"] == "in_progress"

    h.clean(sid)
    for service in SERVICES[:3]:
        await h.answer(command, service, audit_first=service == "identity")
    view = await h.requests.get(rid)
    assert view["status"] == "in_progress"  # projects has not answered
    states = {p["service"]: p["state"] for p in view["progress"]}
    assert states == {
        "consent": "clean",
        "identity": "clean",
        "profiles": "clean",
        "projects": "pending",
    }
    with pytest.raises(ReceiptNotAvailableError):
        await h.receipts.receipt(rid)

    await h.answer(command, "projects")
    view = await h.requests.get(rid)
    assert view["status"] == "verified"
    assert sorted(view["acknowledgements"]) == list(SERVICES)
    assert [t["step"] for t in view["timeline"]][-1] == "verified"

    # The receipt: signed, and every audit_seq provable against the log's signed head.
    h.heads.checkpoint = h.log.head()
    token = await h.receipts.receipt(rid)
    receipt = open_receipt(token, h.signer.jwk)
    assert receipt.request_id == rid and receipt.subject_id == sid
    assert [s.service for s in receipt.services] == sorted(SERVICES)
    assert receipt.held == ()
    size = receipt.checkpoint.tree_size
    assert all(t == size for _, t in evidence_needed(receipt))
    verdict = verify_receipt(
        token,
        keys={k["kid"]: h.signer.jwk for k in h.receipts.jwks()["keys"]},
        log_key=h.log.signer.verifier().to_string(),
        evidence=h.log.evidence(size),
        origin=ORIGIN,
    )
    assert verdict.valid, verdict.reason


async def _lookups_done(h: Harness) -> None:
    """Let the coordinator's background lookups of answers in the log run to their end."""
    for _ in range(100):
        await asyncio.sleep(0)


async def test_an_answer_is_acknowledged_with_the_entry_the_log_hands_out_by_event_id(
    h: Harness,
) -> None:
    """An answer read on a service's events topic has its entry asked of the log by event id;
    the acknowledgement needs no `audit.log` feed then, and the feed bringing the same entries
    later changes nothing. An entry the log does not hold yet is left to the feed."""
    answers = InMemoryAuditLogAnswers()
    h.coordinator.answers = answers
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    entries = {}
    for service in SERVICES:
        report, entry = h.answer_parts(command, service)
        entries[service] = entry
        if service != "projects":  # the log has not taken projects' answer in yet
            answers.entries[report.event_id] = AuditRecord.model_validate(entry)
        await h.coordinator.on_report(report)
    await _lookups_done(h)
    view = await h.requests.get(rid)
    assert sorted(view["acknowledgements"]) == sorted(s for s in SERVICES if s != "projects")
    assert len(answers.calls) == len(SERVICES)  # each answer asked for once
    seqs = {p["service"]: p["audit_seq"] for p in view["progress"]}
    assert all(seqs[s] == entries[s]["seq"] for s in SERVICES if s != "projects")

    await h.feed.on_entries(sorted(entries.values(), key=lambda e: e["seq"]))
    view = await h.requests.get(rid)
    assert view["status"] == "verified"
    steps = [t["step"] for t in view["timeline"]]
    assert steps.count("acknowledged") == len(SERVICES), steps


async def test_each_service_footprint_is_read_once_per_order_once_found_clean(
    h: Harness,
) -> None:
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    h.dirty("profiles", sid)
    for service in SERVICES:
        await h.answer(command, service)
    assert (await h.requests.get(rid))["status"] == "in_progress"
    h.clean(sid)
    await h.coordinator.advance(rid)
    assert (await h.requests.get(rid))["status"] == "verified"
    # A round per acknowledgement asked only the services not yet found clean: profiles,
    # residual, was asked in every round after its acknowledgement; the rest once each.
    asked = [service for kind, service, _ in h.directory.calls if kind == "footprint"]
    assert sorted(s for s in asked if s != "profiles") == sorted(
        s for s in SERVICES if s != "profiles"
    )
    after_profiles = len(SERVICES) - SERVICES.index("profiles")
    assert asked.count("profiles") == after_profiles + 1


def slow_footprint(h: Harness, slow: str) -> asyncio.Event:
    """Make `slow`'s footprint wait until the returned event is set."""
    release = asyncio.Event()
    read = h.directory.footprint

    async def footprint(service: str, subject_id: str) -> Footprint:
        if service == slow:
            await release.wait()
        return await read(service, subject_id)

    h.directory.footprint = footprint  # type: ignore[method-assign]
    return release


async def test_a_slow_footprint_does_not_hold_up_reading_the_answers_queued_behind_it(
    h: Harness,
) -> None:
    """Assessing waits in a queue, as in the service: each answer's footprint is asked as the
    answer is recorded, so the others are read while one service is slow to show its own,
    and each is still read once."""
    queued: list[str] = []
    h.coordinator.advance_later = queued.append
    release = slow_footprint(h, "projects")
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    for service in ("projects", *(s for s in SERVICES if s != "projects")):
        await h.answer(command, service)
    await asyncio.sleep(0.01)
    asked = [service for kind, service, _ in h.directory.calls if kind == "footprint"]
    assert sorted(asked) == sorted(s for s in SERVICES if s != "projects")
    assert set(queued) == {rid}

    assessing = asyncio.create_task(h.coordinator.advance(rid))
    await asyncio.sleep(0.01)
    assert not assessing.done()  # it waits for projects' footprint, asked once already
    release.set()
    await assessing
    assert (await h.requests.get(rid))["status"] == "verified"
    asked = [service for kind, service, _ in h.directory.calls if kind == "footprint"]
    assert sorted(asked) == sorted(SERVICES)


async def test_answers_recorded_while_a_round_reads_footprints_are_taken_in_that_round(
    h: Harness,
) -> None:
    """A round that started with one answer takes the answers recorded while it waited for a
    footprint: the request is verified by that round, not by the rounds queued after it."""
    queued: list[str] = []
    h.coordinator.advance_later = queued.append
    release = slow_footprint(h, "projects")
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    await h.answer(command, "projects")
    assessing = asyncio.create_task(h.coordinator.advance(rid))
    await asyncio.sleep(0.01)
    assert not assessing.done()  # waiting for projects' footprint
    for service in SERVICES:
        if service != "projects":
            await h.answer(command, service)
    release.set()
    progress = await assessing
    assert progress is not None and progress.outcome == "verified"
    assert (await h.requests.get(rid))["status"] == "verified"
    asked = [service for kind, service, _ in h.directory.calls if kind == "footprint"]
    assert sorted(asked) == sorted(SERVICES)  # each read once


async def test_each_answer_read_is_logged_with_where_its_time_went(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators see, per answer and route, how long it took to reach retention and (through
    the audit log) how much of that the log took to take it in."""
    sid, _ = await _erasure(h)
    (command,) = h.publisher.sent
    answered = h.clock.now()
    h.clock.advance(seconds=3)
    record = AuditRecord(
        seq=7,
        event_id=str(uuid.uuid4()),
        producer="projects",
        event_type="projects.SubjectErased",
        action="erase",
        subject_id=sid,
        occurred_at=answered,
        recorded_at=answered + timedelta(seconds=2),
    )
    with caplog.at_level(logging.INFO, logger="mmgen.retention.service_layer.erasure"):
        await h.coordinator.on_audit_entries([record])
        h.clock.advance(seconds=1)
        await h.answer(command, "identity")
    reads = [
        (r.route, r.answering, r.read_s, getattr(r, "logged_s", None))  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "erasure answer read"
    ]
    assert reads == [
        ("audit log", "projects", 3.0, 2.0),
        ("events topic", "identity", 0.0, None),
        ("audit log", "identity", 0.0, 0.0),
    ]


async def test_the_answers_in_one_window_of_the_log_are_recorded_in_one_change(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed that fell behind reads several services' answers at once: they are recorded on
    the request together, not one change after another."""
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    parts = [h.answer_parts(command, service) for service in SERVICES]
    for report, _ in parts:
        assert await h.coordinator.on_report(report) is None  # half an answer: nothing yet
    assert (await h.requests.get(rid))["acknowledgements"] == {}

    change = h.coordinator.book.change
    decided: list[object] = []

    async def counted(request_id: str, decide: Any) -> Any:
        request, result = await change(request_id, decide)
        decided.append(result)
        return request, result

    monkeypatch.setattr(h.coordinator.book, "change", counted)
    await h.feed.on_entries([entry for _, entry in parts])
    recorded, concluded = decided  # one change records the four answers, one concludes
    assert sorted(ack.service for ack in recorded) == sorted(SERVICES)  # type: ignore[attr-defined]
    assert concluded is True
    assert (await h.requests.get(rid))["status"] == "verified"


async def test_an_answer_is_recorded_while_the_projection_still_folds_its_window(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The activity projection does not hold an erasure's answers back."""
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    report, entry = h.answer_parts(command, "identity")
    await h.coordinator.on_report(report)
    folded = asyncio.Event()
    save = h.feed.activity.save

    async def slow_save(batch: Any) -> None:
        await folded.wait()
        await save(batch)

    monkeypatch.setattr(h.feed.activity, "save", slow_save)
    applying = asyncio.create_task(h.feed.on_entries([entry]))
    for _ in range(100):
        if (await h.requests.get(rid))["acknowledgements"]:
            break
        await asyncio.sleep(0.01)
    assert sorted((await h.requests.get(rid))["acknowledgements"]) == ["identity"]
    assert not applying.done()  # the projection is still folding
    folded.set()
    assert await applying == 1


async def test_an_answer_for_another_subject_in_the_window_is_not_recorded(h: Harness) -> None:
    """One window may hold answers for several requests; each is recorded on its own only."""
    first, rid = await _erasure(h)
    second, other = await _erasure(h)
    first_order, second_order = h.publisher.sent
    h.clean(first)
    h.clean(second)
    parts = [h.answer_parts(first_order, "identity"), h.answer_parts(second_order, "profiles")]
    for report, _ in parts:
        await h.coordinator.on_report(report)
    assert await h.coordinator.on_audit_entries(
        [AuditRecord.model_validate(entry) for _, entry in parts]
    ) == [rid, other]
    assert sorted((await h.requests.get(rid))["acknowledgements"]) == ["identity"]
    assert sorted((await h.requests.get(other))["acknowledgements"]) == ["profiles"]


async def test_a_footprint_with_data_keeps_the_request_in_progress(h: Harness) -> None:
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    h.dirty("profiles", sid)
    for service in SERVICES:
        await h.answer(command, service)
    view = await h.requests.get(rid)
    assert view["status"] == "in_progress"
    profiles = next(p for p in view["progress"] if p["service"] == "profiles")
    assert profiles["state"] == "residual" and profiles["readable_outside_held"] == 3
    # After the bound, the residual service makes the scheduler order the erasure again.
    h.clock.advance(seconds=31)
    result = await h.scheduler.tick()
    assert result.erasures_retried == 1
    assert len(h.publisher.sent) == 2
    assert h.publisher.sent[1].command_id != command.command_id
    h.clean(sid)
    for service in SERVICES:
        await h.answer(h.publisher.sent[1], service)
    assert (await h.requests.get(rid))["status"] == "verified"


async def test_a_stopped_service_is_shown_to_retry_and_the_request_completes_later(
    h: Harness,
) -> None:
    sid, rid = await _erasure(h)
    first = h.publisher.sent[0]
    h.clean(sid)
    for service in ("consent", "identity", "projects"):
        await h.answer(first, service)
    h.clock.advance(seconds=31)
    await h.coordinator.advance(rid)
    view = await h.requests.get(rid)
    assert view["status"] == "in_progress"
    profiles = next(p for p in view["progress"] if p["service"] == "profiles")
    assert profiles["state"] == "to_retry"
    assert "no acknowledgement 31 s after the order" in profiles["detail"]
    # The scheduler sends a new attempt; the restarted service and the others answer it.
    await h.scheduler.tick()
    second = h.publisher.sent[-1]
    assert second.command_id != first.command_id
    for service in SERVICES:
        await h.answer(second, service)
    view = await h.requests.get(rid)
    assert view["status"] == "verified"
    assert view["attempts"] == 2


async def test_an_erasure_started_twice_from_one_reading_is_ordered_once(h: Harness) -> None:
    """The request's handler and a scheduler pass that read the request before the handler
    recorded its order both start it: the second start must not order it again (a second
    order has every service erase the subject twice, and doubled the time to `verified`)."""
    start = h.requests.processors.pop("erasure")
    sid, rid = await _erasure(h)
    read_by_the_pass = await h.book.load(rid)
    assert read_by_the_pass.last_order is None and h.publisher.sent == []

    await start(await h.book.load(rid))  # the request's handler
    await start(read_by_the_pass)  # the scheduler pass, with what it read before
    (command,) = h.publisher.sent
    assert (await h.requests.get(rid))["attempts"] == 1

    h.clean(sid)
    for service in SERVICES:
        await h.answer(command, service)
    assert (await h.requests.get(rid))["status"] == "verified"


async def test_answers_arriving_together_are_recorded_together_and_once(h: Harness) -> None:
    """Answers that arrive while one is being recorded are recorded together in the next
    change of the request; the second route to bring an answer changes nothing."""
    h.coordinator.advance_later = [].append
    sid, rid = await _erasure(h)
    (command,) = h.publisher.sent
    h.clean(sid)
    parts = [h.answer_parts(command, service) for service in SERVICES]
    await h.feed.on_entries([entry for _, entry in parts])  # the log's halves first
    changes: list[str] = []
    change = h.book.change

    async def counted(request_id: str, decide: Any) -> Any:
        changes.append(request_id)
        await asyncio.sleep(0)  # the other answers arrive while this change is written
        return await change(request_id, decide)

    h.book.change = counted  # type: ignore[method-assign]
    await asyncio.gather(*(h.coordinator.on_report(report) for report, _ in parts))
    assert len(changes) == 2  # the first answer, then the four that came meanwhile
    view = await h.requests.get(rid)
    assert sorted(view["acknowledgements"]) == sorted(SERVICES)

    changes.clear()
    await h.feed.on_entries([entry for _, entry in parts])  # delivered again
    for report, _ in parts:
        await h.coordinator.on_report(report)
    assert changes == []


async def test_changes_of_one_request_take_turns_instead_of_refusing_each_other(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers recorded side by side (feed, lookups in the log, an assessment) each load the
    request, decide and save: taking turns, none is refused and begun again — all eight are
    recorded, where side by side most ran out of retries."""
    _, rid = await _erasure(h)
    (command,) = h.publisher.sent
    read = h.book.repository.get

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        loaded = await read(*args, **kwargs)
        await asyncio.sleep(0)  # another change runs between this load and its save
        return loaded

    h.book.repository.get = slow_read  # type: ignore[method-assign]

    def answer(n: int) -> AcknowledgementData:
        return AcknowledgementData(
            service=SERVICES[n % len(SERVICES)],
            event_id=f"answer-{n}",
            command_id=command.command_id,
            audit_seq=n,
            keys_shredded=1,
            acknowledged_at=h.clock.now(),
        )

    with caplog.at_level(logging.INFO, logger="mmgen.retention.service_layer.requests"):
        done = await asyncio.gather(
            *(h.book.change(rid, lambda r, n=n: r.acknowledge(answer(n))) for n in range(8))
        )
    assert [recorded for _, recorded in done] == [True] * 8
    assert "changed concurrently" not in caplog.text
    request = await h.book.load(rid)
    assert len(request.seen_acknowledgements) == 8


async def test_attempts_are_bounded(h: Harness) -> None:
    _, rid = await _erasure(h)
    for _ in range(5):
        h.clock.advance(seconds=31)
        await h.scheduler.tick()
    view = await h.requests.get(rid)
    assert view["attempts"] == 3  # max_attempts in the harness
    assert view["status"] == "in_progress"
    assert all(p["state"] == "to_retry" for p in view["progress"])


async def test_hold_then_release_ends_verified(h: Harness) -> None:
    sid = str(uuid.uuid4())
    hold = await h.holds.place(
        subject_id=sid,
        categories=["payment"],
        legal_basis="tax law: invoices kept 10 years",
        owner="finance",
        until=None,
        by=COMPLIANCE,
    )
    _, rid = await _erasure(h, sid)
    (command,) = h.publisher.sent
    assert command.data["categories_held"] == ["payment"]
    h.clean(sid, payment=4)  # projects still holds the payment records, readable
    for service in SERVICES:
        await h.answer(command, service)
    view = await h.requests.get(rid)
    assert view["status"] == "partially_completed"
    assert [(x["category"], x["hold_id"], x["legal_basis"]) for x in view["held"]] == [
        ("payment", hold.hold_id, "tax law: invoices kept 10 years")
    ]
    h.heads.checkpoint = h.log.head()
    partial = open_receipt(await h.receipts.receipt(rid), h.signer.jwk)
    assert [(x.category, x.hold_id) for x in partial.held] == [("payment", hold.hold_id)]

    h.clock.advance(days=400)
    await h.holds.release(hold.hold_id, by=COMPLIANCE)
    second = h.publisher.sent[-1]
    assert second.data["categories_held"] == []
    assert (await h.requests.get(rid))["status"] == "in_progress"
    h.clean(sid)
    for service in SERVICES:
        await h.answer(second, service)
    view = await h.requests.get(rid)
    assert view["status"] == "verified"
    assert view["held"] == []
    h.heads.checkpoint = h.log.head()
    final = open_receipt(await h.receipts.receipt(rid), h.signer.jwk)
    assert final.held == ()
    assert {s.audit_seq for s in final.services}.isdisjoint({s.audit_seq for s in partial.services})


async def test_expired_hold_releases_itself(h: Harness) -> None:
    sid = str(uuid.uuid4())
    await h.holds.place(
        subject_id=sid,
        categories=["payment"],
        legal_basis="dispute pending",
        owner="legal",
        until=h.clock.now() + timedelta(days=10),
        by=COMPLIANCE,
    )
    _, rid = await _erasure(h, sid)
    h.clean(sid, payment=1)
    for service in SERVICES:
        await h.answer(h.publisher.sent[0], service)
    assert (await h.requests.get(rid))["status"] == "partially_completed"
    h.clock.advance(days=11)
    result = await h.scheduler.tick()
    assert result.holds_ended == 1
    assert h.publisher.sent[-1].data["categories_held"] == []


async def test_one_open_request_per_subject_and_type(h: Harness) -> None:
    sid, rid = await _erasure(h)
    again, created = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    assert not created and again["_id"] == rid
    other, created = await h.requests.submit(
        request_type="access", subject_id=sid, actor=subject_actor(sid)
    )
    assert created and other["_id"] != rid


async def test_access_package_holds_every_service_validates_and_names_recipients(
    h: Harness,
) -> None:
    sid = str(uuid.uuid4())
    at = datetime(2027, 1, 10, tzinfo=UTC)
    h.directory.exports[("projects", sid)] = SubjectExport(
        service="projects",
        subject_id=sid,
        generated_at=h.clock.now(),
        erased=False,
        records={"messages": [{"text": "hello"}]},
        events=[
            ExportedEvent(
                event_id="e-share",
                event_type="projects.DataDisclosed",
                occurred_at=at,
                action="share",
                actor=ExportedActor(id="client-1", role="client"),
                purpose="payment_processing",
                categories=["contact", "payment"],
                data={
                    "recipient": {"type": "payment_provider", "name": "PayCo"},
                    "purpose": "payment_processing",
                    "legal_basis": "contract",
                    "categories": ["payment"],
                },
            ),
            ExportedEvent(
                event_id="e-msg",
                event_type="projects.MessagePosted",
                occurred_at=at,
                action="create",
                actor=ExportedActor(id=sid, role="creator"),
                categories=["communication"],
            ),
        ],
    )
    h.directory.down.add("profiles")
    view, _ = await h.requests.submit(
        request_type="access", subject_id=sid, actor=subject_actor(sid)
    )
    rid = view["_id"]
    view = await h.requests.get(rid)
    assert view["status"] == "in_progress"
    assert {p["service"]: p["state"] for p in view["progress"]}["profiles"] == "to_retry"

    h.directory.down.clear()
    await h.scheduler.tick()
    view = await h.requests.get(rid)
    assert view["status"] == "completed"
    download = await h.access.download(rid, sid)
    package, schema = download["package"], download["schema"]
    assert schema == PACKAGE_SCHEMA
    jsonschema.Draft202012Validator(schema).validate(package)
    assert [s["service"] for s in package["services"]] == sorted(SERVICES)
    assert package["recipients"][0]["recipient"] == {"type": "payment_provider", "name": "PayCo"}
    assert package["automated_decision_making"] == {
        "exists": False,
        "statement": NO_AUTOMATED_DECISIONS,
    }
    used = {p["id"]: p["used_for_you"] for p in package["purposes"]}
    assert used["payment_processing"] and not used["cookies.analytics"]
    projects = next(s for s in package["sources"] if s["service"] == "projects")
    assert projects == {
        "service": "projects",
        "provided_by_you": 1,
        "by_others": {"client": 1},
        "by_the_system": 0,
    }
    # Stored encrypted under the subject's key: the stored bytes do not hold the data.
    stored = h.packages.packages[view["package_id"]]
    assert b"PayCo" not in stored.blob.ciphertext
    with pytest.raises(PrivacyRequestNotFoundError):
        await h.access.download(rid, str(uuid.uuid4()))
    h.clock.advance(days=30)
    with pytest.raises(PackageExpiredError):
        await h.access.download(rid, sid)
    assert await h.access.purge_expired() == 1


async def test_an_erased_subjects_package_cannot_be_read(h: Harness) -> None:
    sid = str(uuid.uuid4())
    view, _ = await h.requests.submit(
        request_type="access", subject_id=sid, actor=subject_actor(sid)
    )
    assert (await h.requests.get(view["_id"]))["status"] == "completed"
    await h.kernel.shred(f"subject:{sid}")
    with pytest.raises(PackageExpiredError, match="erased"):
        await h.access.download(view["_id"], sid)


async def test_overdue_requests_are_marked_and_listed(h: Harness) -> None:
    sid = str(uuid.uuid4())
    h.directory.down.update(SERVICES)
    view, _ = await h.requests.submit(
        request_type="access", subject_id=sid, actor=subject_actor(sid)
    )
    due = (await h.requests.get(view["_id"]))["due_by"]
    assert await h.requests.seconds_to_nearest_deadline() == (due - h.clock.now()).total_seconds()
    h.clock.current = datetime(2027, 3, 1, tzinfo=UTC)
    assert await h.requests.page(status=None, overdue=True, limit=10, after=None)
    result = await h.scheduler.tick()
    assert (result.marked_overdue, result.overdue_open) == (1, 1)
    assert result.nearest_deadline_seconds == (due - h.clock.current).total_seconds() <= 0
    later = h.clock.advance(days=1)
    assert await h.requests.seconds_to_nearest_deadline() == (due - later).total_seconds() < 0
    assert (await h.requests.get(view["_id"]))["status"] == "overdue"
    listed = await h.requests.page(status="overdue", overdue=False, limit=10, after=None)
    assert [v["_id"] for v in listed] == [view["_id"]]


async def test_policy_run_orders_once_and_records_why(h: Harness) -> None:
    await h.policies.ensure_defaults()
    assert await h.policies.ensure_defaults() == 0
    sid = str(uuid.uuid4())
    project = str(uuid.uuid4())
    start = datetime(2023, 1, 5, tzinfo=UTC)
    entries = [
        h.log.append(event_id=str(uuid.uuid4()), producer="identity",
                     event_type="identity.UserRegistered", action="create", at=start,
                     subject_id=sid, actor_id=sid, actor_role="creator",
                     categories=("account", "contact")),
        h.log.append(event_id=str(uuid.uuid4()), producer="consent",
                     event_type="consent.TrackingEventAccepted", action="create", at=start,
                     subject_id=sid, actor_id=sid, actor_role="creator", categories=("usage",)),
        h.log.append(event_id=str(uuid.uuid4()), producer="projects",
                     event_type="projects.ProjectCompleted", action="update", at=start,
                     actor_id=sid, actor_role="client",
                     resource={"type": "project", "id": project}),
    ]  # fmt: skip
    await h.feed.on_entries(entries)
    h.clock.current = datetime(2024, 3, 1, tzinfo=UTC)  # 13 months and a bit later
    run = await h.runs.run()
    assert [(o.kind, o.target) for o in run.orders] == [("erase_subject", sid)]
    (order,) = run.orders
    assert order.trigger_event == SUBJECT_INACTIVE and "usage" not in order.categories_held
    assert "P13M" in order.reason
    assert h.publisher.sent[-1].data["request_id"] == f"run-{run.run_id}"
    assert (await h.runs.run()).orders == []  # sent once

    h.clock.current = datetime(2026, 2, 1, tzinfo=UTC)  # three years: account and project
    run = await h.runs.run()
    kinds = sorted((o.kind, o.target) for o in run.orders)
    assert kinds == [("anonymize_resource", f"project:{project}"), ("erase_subject", sid)]
    erase = next(o for o in run.orders if o.kind == "erase_subject")
    assert erase.categories_held == []
    anonymize = next(c for c in h.publisher.sent if c.event_type == "retention.AnonymizeResource")
    assert anonymize.data["resource"] == {"type": "project", "id": project}
    stored = await h.kernel.repository.load(f"retention-run:{run.run_id}")
    assert stored[0].data.orders == run.orders


async def test_policy_run_leaves_subjects_with_an_erasure_request_alone(h: Harness) -> None:
    await h.policies.ensure_defaults()
    sid, _ = await _erasure(h)
    entry = h.log.append(
        event_id=str(uuid.uuid4()), producer="identity", event_type="identity.UserRegistered",
        action="create", at=datetime(2020, 1, 1, tzinfo=UTC), subject_id=sid, actor_id=sid,
        actor_role="client", categories=("account",),
    )  # fmt: skip
    await h.feed.on_entries([entry])
    assert (await h.runs.run()).orders == []


async def test_rebuild_gives_the_same_projection(h: Harness) -> None:
    sid = str(uuid.uuid4())
    for day in range(5):
        h.log.append(
            event_id=str(uuid.uuid4()), producer="projects", event_type="projects.MessagePosted",
            action="create", at=datetime(2027, 1, 1 + day, tzinfo=UTC), subject_id=sid,
            actor_id=sid, actor_role="creator", categories=("communication",),
        )  # fmt: skip
    await h.feed.on_entries(h.log.entries)
    before = await h.activity.subject(sid)

    async def log():
        for entry in h.log.entries:
            yield entry

    assert await h.feed.rebuild(log()) == 5
    assert await h.activity.subject(sid) == before
    assert await h.feed.on_entries(h.log.entries) == 0  # already applied


async def test_a_claim_left_by_an_ended_request_does_not_block_a_new_one(h: Harness) -> None:
    sid = str(uuid.uuid4())
    view, _ = await _access(h, sid)
    assert (await h.requests.get(view["_id"]))["status"] == "completed"
    # A crash between the final save and the claim's release leaves the claim behind.
    h.views.claims[(sid, "access")] = view["_id"]
    again, created = await _access(h, sid)
    assert created and again["_id"] != view["_id"]

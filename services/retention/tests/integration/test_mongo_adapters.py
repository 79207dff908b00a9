"""The MongoDB adapters against the session's real database, and the erasure journey on them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.auditlog.receipt import open_receipt, verify_receipt
from mmgen.events.envelope import Actor, PiiBlob
from mmgen.events.kernel import open_mongo_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.retention.adapters.mongo import (
    MongoActivityStore,
    MongoEvidenceStore,
    MongoHoldViews,
    MongoOrderLog,
    MongoPackageStore,
    MongoPolicyStore,
    MongoRequestViews,
    ensure_indexes,
)
from mmgen.retention.domain.activity import ActivityBatch, fold_batch
from mmgen.retention.domain.contract import AuditRecord, SubjectErasedReport
from mmgen.retention.domain.events import retention_registry
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.policies import DEFAULT_POLICIES
from mmgen.retention.domain.records import IssuedOrder, StoredPackage
from mmgen.retention.domain.requests import PrivacyRequest

from ..harness import ORIGIN, SERVICES, T0, Harness, build_harness, subject_actor

COMPLIANCE = Actor(id="0195f3a0-0000-7000-8000-00000000c0c0", role="compliance")


def _request(kind: str = "erasure", now: datetime = T0) -> PrivacyRequest:
    sid = str(uuid.uuid4())
    return PrivacyRequest.receive(
        str(uuid.uuid4()),
        request_type=kind,  # type: ignore[arg-type]
        subject_id=sid,
        requested_by=subject_actor(sid),
        details=None,
        now=now,
    )


async def test_request_views_keys_pages_claims_and_version_guard(mongo_db: Any) -> None:
    views = MongoRequestViews(mongo_db)
    await views.ensure_indexes()
    a, b, c = _request(), _request("access"), _request("access", T0 + timedelta(days=20))
    for r in (a, b, c):
        await views.put(r.view())
    stored = await views.get(a.request_id)
    assert stored is not None
    assert stored["status"] == "received" and stored["received_at"] == T0
    assert stored["timeline"][0]["at"].tzinfo is not None

    # An older version never replaces a newer one; progress survives a newer view.
    a.order_erasure(services=SERVICES, held=[], reason="asked", now=T0)
    await views.put(a.view())
    await views.set_progress(a.request_id, [{"service": "identity", "state": "pending"}])
    stale = _request()
    stale_view = {**stale.view(), "_id": a.request_id, "version": 0}
    await views.put(stale_view)
    current = await views.get(a.request_id)
    assert current is not None and current["status"] == "in_progress"
    assert current["progress"] == [{"service": "identity", "state": "pending"}]

    # Pages by status, all, open, overdue.
    in_progress = await views.page(status="in_progress", overdue_at=None, limit=10, after=None)
    assert [v["_id"] for v in in_progress] == [a.request_id]
    everything = await views.page(status=None, overdue_at=None, limit=2, after=None)
    rest = await views.page(status=None, overdue_at=None, limit=2, after=everything[-1]["_id"])
    assert sorted(v["_id"] for v in everything + rest) == sorted(r.request_id for r in (a, b, c))
    assert len(await views.open_ids(limit=10, after=None)) == 3
    overdue = await views.page(
        status=None, overdue_at=datetime(2027, 3, 1, tzinfo=UTC), limit=10, after=None
    )
    assert sorted(v["_id"] for v in overdue) == sorted([a.request_id, b.request_id])
    assert await views.count_overdue(datetime(2027, 3, 1, tzinfo=UTC)) == 2
    waiting = [v for v in everything + rest if v["open"] and v.get("answered_at") is None]
    assert await views.nearest_due() == min(v["due_by"] for v in waiting)
    first = await views.page(
        status=None, overdue_at=datetime(2027, 4, 1, tzinfo=UTC), limit=1, after=None
    )
    second = await views.page(
        status=None, overdue_at=datetime(2027, 4, 1, tzinfo=UTC), limit=5, after=first[0]["_id"]
    )
    assert len(first) + len(second) == 3

    # Claims: one open request per subject and type.
    assert await views.claim_open(a.subject_id, "erasure", a.request_id) == a.request_id
    assert await views.claim_open(a.subject_id, "erasure", "other") == a.request_id
    assert (await views.open_for(a.subject_id, "erasure") or {})["_id"] == a.request_id
    assert await views.erasure_subjects([a.subject_id, b.subject_id]) == {a.subject_id}
    await views.release_claim(a.subject_id, "erasure", "not-the-holder")
    assert await views.claim_open(a.subject_id, "erasure", "other") == a.request_id
    await views.release_claim(a.subject_id, "erasure", a.request_id)
    assert await views.claim_open(a.subject_id, "erasure", "next") == "next"

    # A final request leaves the open and overdue lists.
    b.reject(reason="duplicate", by=COMPLIANCE, now=T0)
    await views.put(b.view())
    assert b.request_id not in await views.open_ids(limit=10, after=None)
    overdue = await views.page(
        status=None, overdue_at=datetime(2027, 3, 1, tzinfo=UTC), limit=10, after=None
    )
    assert [v["_id"] for v in overdue] == [a.request_id]


async def test_hold_views(mongo_db: Any) -> None:
    holds = MongoHoldViews(mongo_db)
    await holds.ensure_indexes()
    sid = str(uuid.uuid4())
    ending = HoldView(
        "h1", sid, ("payment",), "tax law", "finance", T0 + timedelta(days=1), T0, "c"
    )
    lasting = HoldView("h2", sid, ("contact",), "claim", "legal", None, T0, "c")
    await holds.put(ending)
    await holds.put(lasting)
    assert await holds.get("h1") == ending
    assert [h.hold_id for h in (await holds.of_subjects([sid]))[sid]] == ["h1", "h2"]
    assert await holds.ended(T0, 10) == []
    assert [h.hold_id for h in await holds.ended(T0 + timedelta(days=2), 10)] == ["h1"]
    released = replace(ending, released_at=T0 + timedelta(days=2), release_reason="expired")
    await holds.put(released)
    assert await holds.ended(T0 + timedelta(days=3), 10) == []
    assert [h.hold_id for h in (await holds.of_subjects([sid]))[sid]] == ["h2"]
    assert [h.hold_id for h in await holds.page(limit=1, after="h1")] == ["h2"]


async def test_policy_store_order_log_packages_evidence(mongo_db: Any) -> None:
    policies = MongoPolicyStore(mongo_db)
    for policy in DEFAULT_POLICIES:
        await policies.put(policy)
    await policies.put(DEFAULT_POLICIES[0])
    assert sorted(p.policy_id for p in await policies.all()) == sorted(
        p.policy_id for p in DEFAULT_POLICIES
    )

    orders = MongoOrderLog(mongo_db)
    key = ("p1", "s1", T0)
    await orders.record([IssuedOrder((key,), "c1", "r1", T0)])
    await orders.record([IssuedOrder((key,), "c2", "r2", T0)])
    assert await orders.issued([key, ("p1", "s1", T0 + timedelta(days=1))]) == {key}

    packages = MongoPackageStore(mongo_db)
    await packages.ensure_indexes()
    blob = PiiBlob(owner="subject:s1", key_id="k", nonce=b"n" * 12, ciphertext=b"secret")
    for pid, days in (("p-old", 1), ("p-new", 40)):
        await packages.put(StoredPackage(pid, "r", "s1", "s1", blob, T0, T0 + timedelta(days=days)))
    stored = await packages.get("p-new")
    assert stored is not None and stored.blob == blob and stored.expires_at.tzinfo is not None
    assert await packages.delete_expired(T0 + timedelta(days=2)) == 1
    assert await packages.get("p-old") is None
    assert await packages.delete_subject("s1") == 1

    evidence = MongoEvidenceStore(mongo_db)
    await evidence.ensure_indexes()
    report = SubjectErasedReport(
        service="identity",
        event_id="e1",
        occurred_at=T0,
        request_id="r",
        subject_id="s1",
        keys_shredded=1,
        records_deleted={"contact": 3},
    )
    record = AuditRecord(
        seq=42,
        event_id="e1",
        producer="identity",
        event_type="identity.SubjectErased",
        action="erase",
        subject_id="s1",
        occurred_at=T0,
    )
    first = await evidence.add_audit(record)
    assert not first.complete and first.audit_seq == 42
    merged = await evidence.add_report(report)
    assert merged.complete and merged.report == report and merged.audit_seq == 42
    again = await evidence.add_report(report)
    assert again.complete
    assert [e.event_id for e in await evidence.for_subject("s1", 10)] == ["e1"]


def _record(seq: int, subject: str, at: datetime, **fields: Any) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        event_id=str(uuid.uuid4()),
        producer="projects",
        event_type=fields.pop("event_type", "projects.MessagePosted"),
        action=fields.pop("action", "create"),
        subject_id=subject,
        actor_id=subject,
        actor_role="creator",
        categories=["communication"],
        occurred_at=at,
        **fields,
    )


async def test_activity_store_trigger_index_cursor_and_reset(mongo_db: Any) -> None:
    store = MongoActivityStore(mongo_db)
    await store.ensure_indexes()
    subjects = [str(uuid.UUID(int=i)) for i in range(1, 6)]
    records = [
        _record(i, sid, T0 + timedelta(days=i), resource={"type": "project", "id": f"p{i}"})
        for i, sid in enumerate(subjects)
    ]
    batch = fold_batch(records, {}, {})
    await store.save(batch)
    assert await store.next_seq() == 5
    loaded, resources = await store.load(subjects[:2], ["project:p0", "project:nope"])
    assert loaded == {k: batch.subjects[k] for k in subjects[:2]}
    assert list(resources) == ["project:p0"]

    due = await store.candidates(
        "subject", "subject.inactive", until=T0 + timedelta(days=2), after=None, limit=10
    )
    assert [c.subject.subject_id for c in due if c.subject] == subjects[:3]
    page = await store.candidates(
        "subject", "subject.inactive", until=T0 + timedelta(days=10), after=due[1].key, limit=2
    )
    assert [c.subject.subject_id for c in page if c.subject] == subjects[2:4]
    resources_due = await store.candidates(
        "resource", "projects.MessagePosted", until=T0, after=None, limit=10
    )
    assert [c.resource.key for c in resources_due if c.resource] == ["project:p0"]

    # New activity moves a subject's index entry (one entry per subject and trigger).
    later = fold_batch(
        [_record(5, subjects[0], T0 + timedelta(days=30))], batch.subjects, batch.resources
    )
    await store.save(later)
    due = await store.candidates(
        "subject", "subject.inactive", until=T0 + timedelta(days=2), after=None, limit=10
    )
    assert [c.subject.subject_id for c in due if c.subject] == subjects[1:3]
    assert await mongo_db["activity_index"].count_documents({}) == 5 * 2 + 5

    await store.set_cursor("policy:x", due[-1].key)
    assert await store.cursor("policy:x") == due[-1].key
    await store.reset()
    assert await store.next_seq() == 0
    assert await store.cursor("policy:x") is None
    assert await store.subject(subjects[0]) is None
    await store.save(ActivityBatch())
    assert await store.next_seq() == 0


async def _mongo_harness(mongo_db: Any) -> Harness:
    await ensure_indexes(mongo_db)
    kernel = await open_mongo_kernel(
        mongo_db,
        producer="retention",
        registry=retention_registry(),
        keyring=MasterKeyring(MasterKey.generate()),
    )
    return build_harness(
        kernel=kernel,
        views=MongoRequestViews(mongo_db),
        hold_views=MongoHoldViews(mongo_db),
        policy_store=MongoPolicyStore(mongo_db),
        activity=MongoActivityStore(mongo_db),
        orders=MongoOrderLog(mongo_db),
        packages=MongoPackageStore(mongo_db),
        evidence=MongoEvidenceStore(mongo_db),
    )


@pytest.mark.slow
async def test_erasure_with_a_hold_to_verified_and_receipt_on_the_real_database(
    mongo_db: Any,
) -> None:
    h = await _mongo_harness(mongo_db)
    sid = str(uuid.uuid4())
    hold = await h.holds.place(
        subject_id=sid,
        categories=["payment"],
        legal_basis="tax law",
        owner="finance",
        until=None,
        by=COMPLIANCE,
    )
    view, created = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    assert created
    rid = view["_id"]
    again, created = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    assert not created and again["_id"] == rid
    (command,) = h.publisher.sent
    h.clean(sid, payment=2)
    for service in SERVICES:
        await h.answer(command, service, audit_first=service == "consent")
    view = await h.requests.get(rid)
    assert view["status"] == "partially_completed"
    assert view["held"][0]["hold_id"] == hold.hold_id

    await h.holds.release(hold.hold_id, by=COMPLIANCE)
    second = h.publisher.sent[-1]
    h.clean(sid)
    for service in SERVICES:
        await h.answer(second, service)
    view = await h.requests.get(rid)
    assert view["status"] == "verified"
    assert [t["step"] for t in view["timeline"]] == [
        "received",
        "erasure_ordered",
        *["acknowledged"] * 4,
        "partially_completed",
        "erasure_ordered",
        *["acknowledged"] * 4,
        "verified",
    ]
    h.heads.checkpoint = h.log.head()
    token = await h.receipts.receipt(rid)
    verdict = verify_receipt(
        token,
        keys=h.signer.jwk,
        log_key=h.log.signer.verifier().to_string(),
        evidence=h.log.evidence(len(h.log.entries)),
        origin=ORIGIN,
    )
    assert verdict.valid, verdict.reason
    assert open_receipt(token, h.signer.jwk).held == ()
    # A new erasure request may be made once this one has ended.
    _, created = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    assert created


async def test_access_package_on_the_real_database_is_stored_encrypted(mongo_db: Any) -> None:
    h = await _mongo_harness(mongo_db)
    await h.policies.ensure_defaults()
    sid = str(uuid.uuid4())
    view, _ = await h.requests.submit(
        request_type="access", subject_id=sid, actor=subject_actor(sid)
    )
    assert (await h.requests.get(view["_id"]))["status"] == "completed"
    raw = await mongo_db["access_packages"].find_one({})
    assert raw is not None and sid.encode() not in raw["blob"]["ciphertext"]
    download = await h.access.download(view["_id"], sid)
    assert download["package"]["subject_id"] == sid
    retention = {r["category"]: r for r in download["package"]["retention"]}
    assert retention["usage"]["rules"][0]["period"] == "P13M"


async def test_policy_run_on_the_real_database(mongo_db: Any) -> None:
    h = await _mongo_harness(mongo_db)
    await h.policies.ensure_defaults()
    sid = str(uuid.uuid4())
    entry = h.log.append(
        event_id=str(uuid.uuid4()), producer="identity", event_type="identity.UserRegistered",
        action="create", at=datetime(2020, 1, 1, tzinfo=UTC), subject_id=sid, actor_id=sid,
        actor_role="client", categories=("account", "contact"),
    )  # fmt: skip
    await h.feed.on_entries([entry])
    first = await h.runs.run()
    assert [(o.kind, o.target, o.categories_held) for o in first.orders] == [
        ("erase_subject", sid, [])
    ]
    assert (await h.runs.run()).orders == []
    # Only the account rule applies: the subject holds no usage data.
    assert await mongo_db["policy_orders"].count_documents({}) == 1

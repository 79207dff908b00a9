"""The `/audit` API in-process (httpx, app lifespan) over the real database, and the CLI's
verification against it: roles, audited refusals, filters and cursors, proofs, stream,
tamper and history-rewrite detection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from mmgen.auditlog.checkpoint import NoteVerifier, open_checkpoint
from mmgen.auditlog.verify import verify_checkpoint_consistency, verify_entry_inclusion
from mmgen.cli.audit import check_inclusion, follow, verify_via_api
from mmgen.consent.audit import AuditComponent, build_audit
from mmgen.consent.audit.api import AUDIT_PROBLEMS
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token
from mmgen.runtime.testing import amr_for, assert_problem

PURPOSE = {"X-Purpose": "legal_compliance"}


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.generate()


def bearer(key: SigningKey, role: str, subject: str | None = None) -> dict[str, str]:
    token = issue_token(key, subject=subject or str(uuid.uuid4()), role=role, amr=amr_for(role))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def component(audit_settings: Any, mongo_db: Any) -> AuditComponent:
    audit = build_audit(audit_settings, mongo_db, registry=CollectorRegistry())
    await audit.store.ensure_indexes()
    return audit


@contextlib.asynccontextmanager
async def serve(
    component: AuditComponent, signing_key: SigningKey
) -> AsyncIterator[httpx.AsyncClient]:
    """The audit router in an app of its own, served in-process."""
    settings = ServiceSettings(
        environment="test", jwks_url=None, log_json=False, service_name="consent"
    )
    app = create_app(
        settings,
        title="audit-test",
        version="0",
        routers=[component.router],
        token_verifier=TokenVerifier(StaticKeySet.of(signing_key), audience="consent"),
        denial_recorder=component.denial_recorder,
        problems=AUDIT_PROBLEMS,
        metrics_registry=CollectorRegistry(),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://consent") as c:
            yield c


@pytest.fixture
async def client(
    component: AuditComponent, signing_key: SigningKey
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(component, signing_key) as c:
        yield c


def compliance_of(key: SigningKey) -> dict[str, str]:
    return {**bearer(key, "compliance"), **PURPOSE}


@pytest.fixture
def compliance(signing_key: SigningKey) -> dict[str, str]:
    return compliance_of(signing_key)


async def fill(component: AuditComponent, item: Any, n: int, **over: Any) -> None:
    start = (await component.store.head()).size
    await component.store.append([item(producer_seq=start + i + 1, **over) for i in range(n)])


async def test_only_compliance_reads_and_every_refusal_is_logged(
    client: httpx.AsyncClient, component: AuditComponent, signing_key: SigningKey
) -> None:
    staff_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    subject = str(uuid.uuid4())
    refused = [
        (bearer(signing_key, "staff", staff_id) | {"X-Purpose": "support"}, 403),
        (bearer(signing_key, "client", client_id), 403),
        (bearer(signing_key, "compliance"), 403),  # no declared purpose
        ({}, 401),
    ]
    for headers, status in refused:
        r = await client.get(f"/audit/subjects/{subject}/report", headers=headers)
        assert r.status_code == status
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(
        "/audit/entries",
        params={"action": "deny", "subject_id": subject},
        headers={**bearer(signing_key, "compliance"), **PURPOSE},
    )
    assert r.status_code == 200
    denials = r.json()["items"]
    assert len(denials) == 4
    assert [d["actor_id"] for d in denials][:2] == [staff_id, client_id]
    assert [d["actor_role"] for d in denials] == ["staff", "client", "compliance", None]
    assert all(
        d["producer"] == "audit" and d["event_type"] == "audit.AccessDenied" for d in denials
    )
    assert [d["producer_seq"] for d in denials] == [1, 2, 3, 4]
    assert denials[0]["resource"] == {
        "type": "audit_log",
        "id": f"/audit/subjects/{subject}/report",
    }


@pytest.mark.parametrize("purpose", ["security", "support", "payment_processing"])
async def test_a_purpose_other_than_legal_compliance_reads_nothing_and_is_logged(
    client: httpx.AsyncClient,
    component: AuditComponent,
    signing_key: SigningKey,
    item: Any,
    purpose: str,
) -> None:
    officer, subject = str(uuid.uuid4()), str(uuid.uuid4())
    await fill(component, item, 3, subject_id=subject)
    headers = bearer(signing_key, "compliance", officer) | {"X-Purpose": purpose}
    for path in ("/audit/entries", f"/audit/subjects/{subject}/report", "/audit/verify"):
        body = assert_problem(await client.get(path, headers=headers), 403, "purpose-not-allowed")
        assert body["allowed_purposes"] == ["legal_compliance"]
        assert "items" not in body and "entries" not in body
    r = await client.get(
        "/audit/entries",
        params={"action": "deny", "actor_id": officer},
        headers={**bearer(signing_key, "compliance"), **PURPOSE},
    )
    denials = r.json()["items"]
    assert [d["resource"]["id"] for d in denials] == [
        "/audit/entries",
        f"/audit/subjects/{subject}/report",
        "/audit/verify",
    ]
    assert {d["purpose"] for d in denials} == {purpose}
    assert {d["actor_role"] for d in denials} == {"compliance"}


async def test_filters_time_windows_and_cursor_pages(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], item: Any
) -> None:
    subject, actor = str(uuid.uuid4()), str(uuid.uuid4())
    await fill(component, item, 30)
    await fill(component, item, 7, subject_id=subject, action="share")
    middle = datetime.now(UTC)
    await fill(component, item, 20, actor_id=actor)
    await fill(component, item, 5, subject_id=subject)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 9} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/audit/entries", params=params, headers=compliance)).json()
        assert len(page["items"]) <= 9
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(62))
    by_subject = (
        await client.get(
            "/audit/entries", params={"subject_id": subject, "limit": 500}, headers=compliance
        )
    ).json()
    assert [e["seq"] for e in by_subject["items"]] == list(range(30, 37)) + list(range(57, 62))
    shares = (
        await client.get(
            "/audit/entries", params={"subject_id": subject, "action": "share"}, headers=compliance
        )
    ).json()
    assert [e["seq"] for e in shares["items"]] == list(range(30, 37))
    by_actor = (
        await client.get(
            "/audit/entries",
            params={"actor_id": actor, "since": middle.isoformat()},
            headers=compliance,
        )
    ).json()
    assert [e["seq"] for e in by_actor["items"]] == list(range(37, 57))
    before = (
        await client.get(
            "/audit/entries", params={"until": middle.isoformat(), "limit": 500}, headers=compliance
        )
    ).json()
    assert [e["seq"] for e in before["items"]] == list(range(37))
    assert (
        await client.get("/audit/entries", params={"producer": "nobody"}, headers=compliance)
    ).json()["items"] == []
    one = await client.get("/audit/entries/31", headers=compliance)
    assert (
        one.status_code == 200 and one.json()["seq"] == 31 and one.json()["subject_id"] == subject
    )
    # Bad input is a problem document, nothing else happens.
    for path, params, status, slug in [
        ("/audit/entries/62", {}, 404, "audit-not-found"),
        ("/audit/entries/-1", {}, 422, "validation-failed"),
        ("/audit/entries", {"limit": 0}, 422, "validation-failed"),
        ("/audit/entries", {"cursor": "garbage!"}, 400, "invalid-cursor"),
        ("/audit/entries", {"since": "2026-11-25T08:00:00"}, 400, "audit-range-invalid"),
        ("/audit/entries", {"subject_id": "x" * 300}, 422, "validation-failed"),
    ]:
        r = await client.get(path, params=params, headers=compliance)
        assert_problem(r, status, slug)
    report = (await client.get(f"/audit/subjects/{subject}/report", headers=compliance)).json()
    assert report["entries"] == 12 and len(report["recipients"]) == 7
    assert {p["purpose"] for p in report["purposes"]} == {"support"}
    assert report["categories"] == [{"category": "contact", "entries": 12}]
    assert len(report["accesses"]) == 5  # reads by staff, not by the subject


async def test_a_subject_report_is_read_a_bounded_page_at_a_time(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], item: Any
) -> None:
    subject = str(uuid.uuid4())
    await fill(component, item, 10, subject_id=subject, action="share", purpose="support")
    await fill(component, item, 40)  # other subjects in between
    await fill(component, item, 13, subject_id=subject, purpose="marketing")
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        r = await client.get(f"/audit/subjects/{subject}/report", params=params, headers=compliance)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            break
    assert [p["entries"] for p in pages] == [10, 10, 3]
    assert sum(p["entries"] for p in pages) == 23
    assert [s["seq"] for s in pages[0]["recipients"]] == list(range(10))
    purposes: dict[str, int] = {}
    for page in pages:
        for row in page["purposes"]:
            purposes[row["purpose"]] = purposes.get(row["purpose"], 0) + row["entries"]
    assert purposes == {"support": 10, "marketing": 13}
    whole = (await client.get(f"/audit/subjects/{subject}/report", headers=compliance)).json()
    assert whole["entries"] == 23 and whole["next_cursor"] is None
    # A page is bounded: no request asks for more than the largest page.
    for params, status, slug in [
        ({"limit": 0}, 422, "validation-failed"),
        ({"limit": 5_001}, 422, "validation-failed"),
        ({"cursor": "garbage!"}, 400, "invalid-cursor"),
    ]:
        r = await client.get(f"/audit/subjects/{subject}/report", params=params, headers=compliance)
        assert_problem(r, status, slug)


async def test_heads_proofs_and_public_key(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], item: Any
) -> None:
    assert (await client.get("/audit/checkpoints/latest", headers=compliance)).status_code == 404
    await fill(component, item, 21)
    first = await component.checkpointer.sign_now()
    await fill(component, item, 40)
    await component.checkpointer.sign_now()
    key_text = (await client.get("/audit/public-key")).text.strip()
    key = NoteVerifier.from_string(key_text)
    latest = (await client.get("/audit/checkpoints/latest", headers=compliance)).json()
    assert (
        set(latest) == {"tree_size", "root_hash", "timestamp", "note"} and latest["tree_size"] == 61
    )
    cp = open_checkpoint(latest["note"], key)
    assert (
        cp.root_hash.hex() == latest["root_hash"]
        and f"timestamp {latest['timestamp']}" in cp.extensions
    )
    old = (await client.get(f"/audit/checkpoints/{first.tree_size}", headers=compliance)).json()
    proof = (
        await client.get(
            "/audit/proofs/consistency", params={"first": 21, "second": 61}, headers=compliance
        )
    ).json()
    assert verify_checkpoint_consistency(old["note"], latest["note"], proof, key).valid
    for seq in (0, 20, 33, 60):
        entry = (await client.get(f"/audit/entries/{seq}", headers=compliance)).json()
        inc = (
            await client.get(
                "/audit/proofs/inclusion", params={"seq": seq, "tree_size": 61}, headers=compliance
            )
        ).json()
        verify_entry_inclusion(entry, inc, cp)
    client.headers["Authorization"] = compliance["Authorization"]  # as the CLI's client does
    outcome = await check_inclusion(client, key, 42, "legal_compliance")
    assert outcome["tree_size"] == 61
    bad = await client.get(
        "/audit/proofs/inclusion", params={"seq": 70, "tree_size": 61}, headers=compliance
    )
    assert_problem(bad, 400, "audit-range-invalid")
    missing = await client.get("/audit/checkpoints/5", headers=compliance)
    assert_problem(missing, 404, "audit-not-found")


async def test_stream_tails_and_resumes_with_last_event_id(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], item: Any
) -> None:
    await fill(component, item, 12)
    client.headers["Authorization"] = compliance["Authorization"]
    got: list[dict[str, Any]] = []
    last = await follow(client, got.append, start=3, limit=5)
    assert [e["seq"] for e in got] == [3, 4, 5, 6, 7] and last == 7
    r = await client.get(
        "/audit/stream", params={"limit": 3}, headers={**compliance, "Last-Event-ID": "7"}
    )
    ids = [int(line[3:]) for line in r.text.splitlines() if line.startswith("id:")]
    assert ids == [8, 9, 10]
    assert r.headers["content-type"].startswith("text/event-stream")


async def test_cli_verifies_then_catches_tampering_and_rewritten_history(
    client: httpx.AsyncClient,
    component: AuditComponent,
    compliance: dict[str, str],
    item: Any,
    tmp_path: Any,
    edit_log: Any,
) -> None:
    await fill(component, item, 40)
    await component.checkpointer.sign_now()
    client.headers["Authorization"] = compliance["Authorization"]
    key = component.signer.verifier()
    verdict, saved = await verify_via_api(client, key)
    assert verdict.valid and verdict.checked == 40 and verdict.checkpoint_size == 40
    server = (await client.get("/audit/verify", headers=compliance)).json()
    assert server["valid"] and server["checked"] == 40
    # Growth after the saved head is fine.
    await fill(component, item, 10)
    await component.checkpointer.sign_now()
    verdict, _ = await verify_via_api(client, key, saved_note=saved)
    assert verdict.valid and verdict.consistent_with_saved
    # A wrong pinned key refuses the server's head.
    other = NoteVerifier.from_string(
        __import__("mmgen.auditlog.checkpoint", fromlist=["NoteSigner"])
        .NoteSigner.generate(key.name)
        .verifier()
        .to_string()
    )
    verdict, _ = await verify_via_api(client, other)
    assert not verdict.valid and verdict.code == "checkpoint_invalid"
    # History rewritten consistently (valid chain, new validly signed head): only the saved head
    # catches it.
    await edit_log.rewrite_history(component, 25)
    server = (await client.get("/audit/verify", headers=compliance)).json()
    assert server["valid"]  # the server's own recheck cannot see a consistent rewrite
    verdict, _ = await verify_via_api(client, key)
    assert verdict.valid  # nor can a verifier without memory
    verdict, _ = await verify_via_api(client, key, saved_note=saved)
    assert not verdict.valid and verdict.consistent_with_saved is False
    assert verdict.code == "inconsistent_with_saved_head"


async def test_tampered_entry_fails_server_verify_and_cli(
    client: httpx.AsyncClient,
    component: AuditComponent,
    compliance: dict[str, str],
    item: Any,
    edit_log: Any,
) -> None:
    await fill(component, item, 30)
    await component.checkpointer.sign_now()
    doc = await component.store.get_document(17)
    assert doc is not None
    e = json.loads(doc["e"])
    e["actor_id"] = str(uuid.uuid4())
    await edit_log.set(17, "e", json.dumps(e))
    client.headers["Authorization"] = compliance["Authorization"]
    server = (await client.get("/audit/verify", headers=compliance)).json()
    assert (server["valid"], server["first_bad_seq"], server["checked"]) == (False, 17, 17)
    part = (
        await client.get("/audit/verify", params={"from": 0, "to": 16}, headers=compliance)
    ).json()
    assert part["valid"] and part["checked"] == 17
    verdict, _ = await verify_via_api(client, component.signer.verifier())
    assert not verdict.valid and verdict.first_bad_seq == 17
    # Deleting an entry is caught too.
    await edit_log.remove(5)
    verdict, _ = await verify_via_api(client, component.signer.verifier())
    assert not verdict.valid and verdict.first_bad_seq == 5
    assert (await client.get("/audit/verify", headers=compliance)).json()["first_bad_seq"] == 5


async def test_a_service_token_reads_signed_heads_and_nothing_else(
    client: httpx.AsyncClient, component: AuditComponent, signing_key: SigningKey, item: Any
) -> None:
    """Retention puts the latest signed head in every erasure receipt: heads (sizes, hashes,
    signatures) are open to service tokens, entries and proofs stay compliance's."""
    await fill(component, item, 3)
    await component.checkpointer.sign_now()
    service = bearer(signing_key, "service", "retention")
    latest = await client.get("/audit/checkpoints/latest", headers=service)
    assert latest.status_code == 200, latest.text
    assert latest.json()["tree_size"] >= 3
    by_size = await client.get(f"/audit/checkpoints/{latest.json()['tree_size']}", headers=service)
    assert by_size.status_code == 200, by_size.text
    assert_problem(await client.get("/audit/entries/0", headers=service), 403, "role-not-allowed")
    assert_problem(
        await client.get("/audit/checkpoints/latest", headers=bearer(signing_key, "client")),
        403,
        "role-not-allowed",
    )


async def test_retention_looks_up_an_erasure_answer_waiting_for_its_append(
    client: httpx.AsyncClient, component: AuditComponent, signing_key: SigningKey, item: Any
) -> None:
    """Retention takes an acknowledgement's `seq` by the answer's event id as soon as the log
    holds it: an answer appended while the lookup waits is handed out at once; any other entry,
    and any other caller, gets nothing."""
    retention = {**bearer(signing_key, "service", "retention"), **PURPOSE}
    await fill(component, item, 3)
    answer = item(producer="projects", event_type="projects.SubjectErased", action="erase")
    url = f"/audit/erasure-answers/{answer['event_id']}"
    assert_problem(await client.get(url, headers=retention), 404, "audit-not-found")

    waiting = asyncio.create_task(client.get(url, params={"wait": 4}, headers=retention))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = time.monotonic()
    component.on_append(await component.store.append([answer]))
    got = await waiting
    assert time.monotonic() - started < 0.4  # woken by the append, not by its next look
    assert got.status_code == 200, got.text
    entry = got.json()
    assert (entry["seq"], entry["event_id"]) == (3, answer["event_id"])
    assert entry["event_type"] == "projects.SubjectErased"
    assert entry["subject_id"] == answer["subject_id"]

    # Only answers to erasure orders, only to retention, with a bounded wait.
    other = (await client.get("/audit/entries/0", headers=compliance_of(signing_key))).json()
    assert_problem(
        await client.get(f"/audit/erasure-answers/{other['event_id']}", headers=retention),
        404,
        "audit-not-found",
    )
    for who in (bearer(signing_key, "service", "projects"), compliance_of(signing_key)):
        refused = await client.get(url, headers={**who, **PURPOSE})
        assert refused.status_code == 403, refused.text
    too_long = await client.get(url, params={"wait": 60}, headers=retention)
    assert_problem(too_long, 422, "validation-failed")


async def test_verify_caps_its_range_and_runs_one_at_a_time(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], item: Any
) -> None:
    from types import SimpleNamespace

    from mmgen.consent.audit.component import AuditConfig

    settings = SimpleNamespace(kafka_bootstrap="x", audit_verify_max_entries=7)
    assert AuditConfig.from_settings(settings).verify_max_entries == 7
    await fill(component, item, 12)
    component.queries.verify_max_entries = 8
    before = await component.store.head()
    over = await client.get("/audit/verify", params={"from": 2, "to": 10}, headers=compliance)
    body = assert_problem(over, 422, "audit-verify-range-too-large")
    assert body["max_entries"] == 8 and body["requested_entries"] == 9
    assert "8" in body["detail"] and "CONSENT_AUDIT_VERIFY_MAX_ENTRIES" in body["detail"]
    whole = await client.get("/audit/verify", headers=compliance)
    assert_problem(whole, 422, "audit-verify-range-too-large")
    assert (await component.store.head()) == before
    small = await client.get("/audit/verify", params={"from": 2, "to": 9}, headers=compliance)
    assert small.status_code == 200, small.text
    assert small.json()["valid"] and small.json()["checked"] == 8
    async with component.queries._verifying:
        busy = await client.get("/audit/verify", params={"from": 0, "to": 3}, headers=compliance)
    assert_problem(busy, 429, "audit-verify-busy")


@pytest.mark.parametrize("value", [b"\xb2", "\u00b2".encode("latin-1"), b"abc", b"-1", b"7 "])
async def test_a_last_event_id_that_is_no_seq_is_a_400(
    client: httpx.AsyncClient, component: AuditComponent, compliance: dict[str, str], value: bytes
) -> None:
    r = await client.get(
        "/audit/stream",
        params={"limit": 1},
        headers=[*compliance.items(), ("Last-Event-ID", value)],  # type: ignore[list-item]
    )
    assert_problem(r, 400, "audit-range-invalid")
    assert component.stream_slots.open_for("anyone") == 0


async def test_a_stream_ends_when_its_token_expires(
    client: httpx.AsyncClient, component: AuditComponent, signing_key: SigningKey, item: Any
) -> None:
    await fill(component, item, 3)
    officer = str(uuid.uuid4())
    token = issue_token(
        signing_key,
        subject=officer,
        role="compliance",
        amr=amr_for("compliance"),
        ttl=timedelta(seconds=2),
    )
    headers = {"Authorization": f"Bearer {token}", **PURPOSE}
    # A live tail with no limit: only the token's expiry ends it.
    r = await asyncio.wait_for(client.get("/audit/stream", headers=headers), 15)
    assert r.status_code == 200
    assert component.stream_slots.open_for(officer) == 0


async def test_streams_per_principal_are_capped_and_a_revoked_one_ends(
    audit_settings: Any, mongo_db: Any, signing_key: SigningKey, item: Any, eventually: Any
) -> None:
    from mmgen.platform.auth.denylist import InMemorySubjectDenylist

    revoked = InMemorySubjectDenylist()
    component = build_audit(
        audit_settings,
        mongo_db,
        registry=CollectorRegistry(),
        denylist=revoked,
        streams_per_principal=2,
        stream_recheck_seconds=0.5,
    )
    await component.store.ensure_indexes()
    officer, other = str(uuid.uuid4()), str(uuid.uuid4())
    mine = {**bearer(signing_key, "compliance", officer), **PURPOSE}
    async with serve(component, signing_key) as c:
        streams = [asyncio.create_task(c.get("/audit/stream", headers=mine)) for _ in range(2)]
        await eventually(lambda: component.stream_slots.open_for(officer) == 2)
        third = await c.get("/audit/stream", headers=mine)
        body = assert_problem(third, 429, "audit-stream-limit")
        assert "at most 2" in body["detail"]
        await fill(component, item, 1)
        theirs = await asyncio.wait_for(
            c.get(
                "/audit/stream",
                params={"limit": 1, "from": 0},
                headers={**bearer(signing_key, "compliance", other), **PURPOSE},
            ),
            10,
        )
        assert theirs.status_code == 200  # the cap is per principal
        revoked.deny(officer)
        loop = asyncio.get_running_loop()
        began = loop.time()
        done = await asyncio.wait_for(asyncio.gather(*streams), 10)
        # Bound: the recheck interval plus one keepalive wait.
        assert loop.time() - began < 0.5 + 1.0 + 1.0
        assert all(r.status_code == 200 for r in done)
        assert component.stream_slots.open_for(officer) == 0


async def test_every_compliance_read_is_recorded_with_actor_and_purpose(
    audit_settings: Any, mongo_db: Any, signing_key: SigningKey, item: Any
) -> None:
    from mmgen.events.kernel import in_memory_kernel
    from mmgen.events.registry import EventRegistry
    from mmgen.runtime.contract import register_standard_events
    from mmgen.runtime.trail import AuditTrail

    registry = EventRegistry()
    kernel = in_memory_kernel(producer="consent", registry=registry)
    trail = AuditTrail(kernel.repository, register_standard_events(registry, "consent"))
    component = build_audit(audit_settings, mongo_db, registry=CollectorRegistry(), trail=trail)
    await component.store.ensure_indexes()
    await fill(component, item, 4)
    officer, subject = str(uuid.uuid4()), str(uuid.uuid4())
    headers = {**bearer(signing_key, "compliance", officer), **PURPOSE}

    async def recorded() -> list[Any]:
        return await kernel.store.read_range(1, await kernel.store.last_seq() + 1)

    async with serve(component, signing_key) as c:
        r = await c.get("/audit/entries", params={"subject_id": subject}, headers=headers)
        assert r.status_code == 200
        [read] = await recorded()
        assert read.event_type == "consent.DataAccessed" and read.action == "read"
        assert read.actor is not None and read.actor.id == officer
        assert read.actor.role == "compliance" and read.purpose == "legal_compliance"
        assert read.subject_id == subject
        assert read.resource.id == "audit_log:/audit/entries"
        for path, params in [
            ("/audit/entries/1", {}),
            ("/audit/proofs/inclusion", {"seq": 1}),
            ("/audit/proofs/consistency", {"first": 1, "second": 3}),
            (f"/audit/subjects/{subject}/report", {}),
            ("/audit/verify", {}),
            ("/audit/stream", {"from": 0, "limit": 2}),
        ]:
            got = await asyncio.wait_for(c.get(path, params=params, headers=headers), 10)
            assert got.status_code == 200, got.text
        reads = await recorded()
        assert len(reads) == 7
        assert all(e.actor is not None and e.actor.id == officer for e in reads)
        assert {e.resource.id for e in reads[1:]} == {
            "audit_log:/audit/entries/{seq}",
            "audit_log:/audit/proofs/inclusion",
            "audit_log:/audit/proofs/consistency",
            "audit_log:/audit/subjects/{subject_id}/report",
            "audit_log:/audit/verify",
            "audit_log:/audit/stream",
        }
        # A read that fails records no access (a refusal is the denial recorder's to log).
        bad = await c.get("/audit/entries/99", headers=headers)
        assert_problem(bad, 404, "audit-not-found")
        assert len(await recorded()) == 7

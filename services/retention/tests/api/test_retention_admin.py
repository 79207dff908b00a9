"""Policies, holds, runs, keys, the audit feed and retention's own subject-rights routes."""

from __future__ import annotations

import uuid

import pytest

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.platform.auth import issue_token
from mmgen.runtime.testing import assert_problem, eventually

from .conftest import Api, subject_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _compliance(api: Api) -> dict[str, str]:
    return api.world.tokens.headers("compliance", purpose="legal_compliance")[1]


async def test_default_policies_are_seeded_and_policies_are_checked(api: Api) -> None:
    listed = await api.client.get("/retention/policies", headers=_compliance(api))
    assert listed.status_code == 200, listed.text
    defaults = {(p["category"], p["trigger_event"], p["period"]) for p in listed.json()["items"]}
    assert ("account", "subject.inactive", "P3Y") in defaults
    assert ("project", "projects.ProjectCompleted", "P3Y") in defaults

    policy = {
        "category": "usage",
        "trigger_event": "subject.inactive",
        "period": "PT5H",
        "action": "erase",
        "legal_basis": "analytics kept 13 months",
    }
    bad = await api.client.post("/retention/policies", headers=_compliance(api), json=policy)
    assert_problem(bad, 422, "period-invalid")
    anonymise_inactive = {**policy, "period": "P6M", "action": "anonymize"}
    nonsense = await api.client.post(
        "/retention/policies", headers=_compliance(api), json=anonymise_inactive
    )
    assert_problem(nonsense, 422, "policy-invalid")
    _, admin = api.world.tokens.headers("admin", purpose="legal_compliance")
    defined = await api.client.post(
        "/retention/policies", headers=admin, json={**policy, "period": "P6M"}
    )
    assert defined.status_code == 201, defined.text
    assert defined.json()["period"] == "P6M"
    _, creator = subject_headers(api)
    refused = await api.client.get("/retention/policies", headers=creator)
    assert_problem(refused, 403, "role-not-allowed")


async def test_a_run_records_what_it_ordered_and_why(api: Api) -> None:
    ran = await api.client.post("/retention/run", headers=_compliance(api))
    assert ran.status_code == 200, ran.text
    run = ran.json()
    stored = await api.stored(event_type="retention.RetentionRunCompleted")
    assert run["run_id"] in {s["data"]["run_id"] for s in stored}
    mine = next(s for s in stored if s["data"]["run_id"] == run["run_id"])
    assert mine["actor"]["role"] == "compliance"
    assert mine["data"]["orders"] == run["orders"]


async def test_holds_are_listed_page_by_page_and_checked(api: Api) -> None:
    subject = str(uuid.uuid4())
    for category in ("payment", "contact", "project"):
        placed = await api.client.post(
            "/retention/holds",
            headers=_compliance(api),
            json={
                "subject_id": subject,
                "categories": [category],
                "legal_basis": "pending dispute",
                "owner": "legal",
            },
        )
        assert placed.status_code == 201, placed.text
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get("/retention/holds", headers=_compliance(api), params=params)
        assert page.status_code == 200, page.text
        ids.extend(h["hold_id"] for h in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == len(set(ids)) >= 3
    unknown = await api.client.post(
        "/retention/holds",
        headers=_compliance(api),
        json={"subject_id": subject, "categories": ["gossip"], "legal_basis": "x", "owner": "y"},
    )
    assert_problem(unknown, 422, "hold-invalid")
    missing = await api.client.delete(f"/retention/holds/{uuid.uuid4()}", headers=_compliance(api))
    assert_problem(missing, 404, "hold-not-found")


async def test_receipt_keys_are_public_and_receipts_wait_for_verification(api: Api) -> None:
    jwks = await api.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    [key] = jwks.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert "d" not in key
    _, headers = subject_headers(api)
    filed = await api.client.post("/privacy-requests", headers=headers, json={"type": "access"})
    early = await api.client.get(
        f"/privacy-requests/{filed.json()['request_id']}/receipt", headers=headers
    )
    assert_problem(early, 409, "receipt-not-available")


async def test_the_audit_feed_builds_the_activity_projection(api: Api) -> None:
    subject = str(uuid.uuid4())
    entry = Envelope(
        event_type="identity.UserRegistered",
        schema_version=1,
        producer="identity",
        producer_seq=1,
        stream_id=f"user-{subject}",
        stream_version=1,
        subject_id=subject,
        actor=Actor(id=subject, role="creator"),
        action="create",
        resource=Resource(type="user", id=subject),
        categories=("contact",),
    )
    seq = await api.world.audit(entry)
    activity = await eventually(lambda: api.retention.activity.subject(subject))
    assert activity.categories == {"identity": ("contact",)}
    assert activity.last_seq == seq
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["audit-feed"].startswith("applied through audit seq")


async def test_retention_serves_its_own_footprint_and_export_to_services(api: Api) -> None:
    subject, headers = subject_headers(api)
    await api.client.post(
        "/privacy-requests",
        headers=headers,
        json={"type": "rectification", "details": "my phone is wrong"},
    )
    token = issue_token(api.world.tokens.key, subject="retention", role="service")
    service = {"Authorization": f"Bearer {token}"}
    footprint = await api.client.get(f"/internal/subjects/{subject}/footprint", headers=service)
    assert footprint.status_code == 200, footprint.text
    assert footprint.json()["categories"]["account"] == {
        "records": 1,
        "readable_personal_fields": 1,
    }
    export = await api.client.get(
        f"/internal/subjects/{subject}/export", headers={**service, "X-Purpose": "legal_compliance"}
    )
    assert export.status_code == 200, export.text
    personal = [e["personal"] for e in export.json()["events"] if e["personal"]]
    assert personal == [{"details": "my phone is wrong"}]
    refused = await api.client.get(f"/internal/subjects/{subject}/footprint", headers=headers)
    assert_problem(refused, 403)

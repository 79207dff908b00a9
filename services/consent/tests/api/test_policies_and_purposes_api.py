"""API tests: the purposes catalogue and policy versions (publish, current, errors)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mmgen.runtime.testing import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_purposes_catalogue_is_public_and_complete(client) -> None:
    response = await client.get("/purposes")
    assert response.status_code == 200
    items = {p["id"]: p for p in response.json()["items"]}
    for required in (
        "cookies.analytics",
        "profile.sensitive_sharing",
        "marketing.email",
        "data.sale_sharing",
        "project_execution",
        "support",
        "legal_compliance",
        "payment_processing",
        "security",
    ):
        assert required in items
        assert items[required]["legal_basis"]
        assert items[required]["description"]
        assert items[required]["data_categories"]
    assert items["cookies.analytics"]["legal_basis"] == "consent"
    assert items["cookies.analytics"]["consent_based"] is True
    assert items["project_execution"]["consent_based"] is False


async def test_publish_policy_hashes_text_and_becomes_current(api, client, tokens) -> None:
    _, admin = tokens.headers("admin")
    name = uuid.uuid4().hex[:8]
    v1, v2, v3 = (f"{name}-{n}" for n in (1, 2, 3))
    text = "Version one of the policy."
    now = datetime.now(UTC)
    response = await client.post(
        "/policies",
        headers=admin,
        json={
            "version": v1,
            "effective_at": (now - timedelta(hours=1)).isoformat(),
            "title": "Policy v1",
            "text": text,
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    # A later version not yet in effect does not become current.
    await api.publish_policy(v3, effective_in=timedelta(days=10))
    await api.publish_policy(v2, effective_in=timedelta(minutes=-5))

    current = (await client.get("/policies/current")).json()
    assert current["version"] == v2
    assert current["text"] == f"We collect what we need ({v2})."
    assert (await client.get(f"/policies/{v1}")).json()["text"] == text
    listed = [p["version"] for p in (await client.get("/policies")).json()["items"]]
    assert [v for v in listed if v.startswith(name)] == [v3, v2, v1]

    stored = [
        e
        for e in await api.events(event_type="consent.PolicyPublished")
        if e["data"]["version"].startswith(name)
    ]
    assert [e["data"]["version"] for e in stored] == [v1, v3, v2]
    assert stored[0]["action"] == "create"


async def test_policy_errors_are_problems_and_store_nothing(api, client, tokens) -> None:
    _, admin = tokens.headers("admin")
    version = await api.publish_policy()
    duplicate = await client.post(
        "/policies",
        headers=admin,
        json={
            "version": version,
            "effective_at": "2026-01-01T00:00:00Z",
            "title": "t",
            "text": "x",
        },
    )
    assert_problem(duplicate, 409, "policy-version-exists")

    mark = await api.mark()
    for body in (
        {"version": "v9", "title": "t", "text": "x"},  # no effective date
        {"version": "v9", "effective_at": "2026-01-01T00:00:00Z", "title": "t", "text": ""},
        {
            "version": "bad version",
            "effective_at": "2026-01-01T00:00:00Z",
            "title": "t",
            "text": "x",
        },
        {
            "version": "v9",
            "effective_at": "2026-01-01T00:00:00Z",
            "title": "t",
            "text": "x",
            "x": 1,
        },
    ):
        response = await client.post("/policies", headers=admin, json=body)
        assert assert_problem(response, 422, "validation-failed")["errors"], body
    assert await api.events(after=mark) == []
    assert_problem(await client.get("/policies/v9"), 404, "policy-not-found")


async def test_only_admins_publish_and_refusals_are_audited(api, client, tokens) -> None:
    mark = await api.mark()
    staff_id, staff = tokens.headers("staff")
    body = {"version": "v1", "effective_at": "2026-01-01T00:00:00Z", "title": "t", "text": "x"}
    assert_problem(await client.post("/policies", headers=staff, json=body), 403)
    assert_problem(await client.post("/policies", json=body), 401)

    stored = await api.events(after=mark)
    assert [(d["event_type"], d["data"]["status"], d["action"]) for d in stored] == [
        ("consent.AccessDenied", 403, "deny"),
        ("consent.AccessDenied", 401, "deny"),
    ]
    assert stored[0]["actor"] == {"id": staff_id, "role": "staff"}
    assert stored[0]["data"]["route"] == "/policies"
    assert stored[1]["actor"] is None

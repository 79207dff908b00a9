"""API tests: granting and withdrawing consents, staff reads with a purpose, GPC."""

from __future__ import annotations

import uuid

PROBLEM = "application/problem+json"


async def test_grant_then_withdraw_is_one_step_each(api, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    granted = await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["granted"] is True
    assert granted.json()["method"] == "explicit"
    withdrawn = await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": False, "policy_version": "v1"}
    )
    assert withdrawn.status_code == 200
    mine = (await client.get("/consents/me", headers=me)).json()
    assert mine["subject_id"] == subject
    assert [(c["purpose"], c["granted"], c["policy_version"]) for c in mine["items"]] == [
        ("marketing.email", False, "v1")
    ]
    assert mine["items"][0]["decided_at"]

    stored = await api.events(subject_id=subject)
    assert [e["event_type"] for e in stored] == [
        "consent.ConsentGranted",
        "consent.ConsentWithdrawn",
    ]
    assert all(e["action"] == "consent" for e in stored)
    assert stored[0]["categories"] == ["consent", "contact"]
    assert stored[0]["data"] == {
        "purpose": "marketing.email",
        "policy_version": "v1",
        "method": "explicit",
    }
    assert stored[0]["actor"] == {"id": subject, "role": "client"}
    assert stored[0]["pii"]["owner"] == f"subject:{subject}"


async def test_repeating_the_same_decision_records_nothing_new(api, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("creator")
    body = {"granted": True, "policy_version": "v1"}
    for _ in range(2):
        response = await client.put("/consents/me/profile.sensitive_sharing", headers=me, json=body)
        assert response.status_code == 200
    stored = await api.events(subject_id=subject)
    assert len(stored) == 1
    assert sorted(stored[0]["categories"]) == ["consent", "sensitive"]


async def test_consent_errors_are_problems_and_store_nothing(api, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    before = len(await api.events())

    unknown = await client.put(
        "/consents/me/cookies.everything",
        headers=me,
        json={"granted": True, "policy_version": "v1"},
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert unknown.json()["type"] == "urn:mmgen:problem:purpose-not-found"

    not_consent = await client.put(
        "/consents/me/project_execution",
        headers=me,
        json={"granted": False, "policy_version": "v1"},
    )
    assert not_consent.status_code == 422
    assert not_consent.json()["type"] == "urn:mmgen:problem:purpose-not-consent-based"

    unpublished = await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": True, "policy_version": "v7"}
    )
    assert unpublished.status_code == 422
    assert unpublished.json()["type"] == "urn:mmgen:problem:policy-version-unknown"
    assert unpublished.json()["errors"][0]["field"] == "policy_version"

    for body in (
        {"granted": "yes", "policy_version": "v1"},
        {"policy_version": "v1"},
        {"granted": True},
        {"granted": True, "policy_version": "v1", "subject_id": str(uuid.uuid4())},
        {"granted": True, "policy_version": "v1 ; drop"},
    ):
        bad = await client.put("/consents/me/marketing.email", headers=me, json=body)
        assert bad.status_code == 422, body
        assert bad.headers["content-type"].startswith(PROBLEM)
        assert bad.json()["errors"], body

    assert len(await api.events()) == before
    assert (await client.get("/consents/me", headers=me)).json()["items"] == []
    assert await api.db["consents"].count_documents({"subject_id": subject}) == 0


async def test_consents_need_a_person_token(api, client, tokens) -> None:
    await api.publish_policy("v1")
    assert (await client.get("/consents/me")).status_code == 401
    _, service = tokens.headers("service", subject="retention")
    refused = await client.put(
        "/consents/me/marketing.email",
        headers=service,
        json={"granted": True, "policy_version": "v1"},
    )
    assert refused.status_code == 403
    codes = [d["data"]["code"] for d in await api.events(event_type="consent.AccessDenied")]
    assert codes == ["unauthenticated", "role-not-allowed"]


async def test_staff_read_with_purpose_is_audited(api, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    await client.put(
        "/consents/me/cookies.analytics", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    staff_id, staff = tokens.headers("staff")
    response = await client.get(f"/consents/{subject}", headers={**staff, "X-Purpose": "support"})
    assert response.status_code == 200
    assert [c["purpose"] for c in response.json()["items"]] == ["cookies.analytics"]

    (read,) = await api.events(event_type="consent.ConsentRecordsRead")
    assert read["action"] == "read"
    assert read["subject_id"] == subject
    assert read["actor"] == {"id": staff_id, "role": "staff"}
    assert read["purpose"] == "support"
    assert read["data"] == {"records": 1}


async def test_staff_read_without_purpose_is_refused_and_audited(api, client, tokens) -> None:
    subject = str(uuid.uuid4())
    compliance_id, compliance = tokens.headers("compliance")
    refused = await client.get(f"/consents/{subject}", headers=compliance)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["type"] == "urn:mmgen:problem:purpose-required"
    _, other_client = tokens.headers("client")
    as_client = await client.get(
        f"/consents/{subject}", headers={**other_client, "X-Purpose": "support"}
    )
    assert as_client.status_code == 403

    denials = await api.events(event_type="consent.AccessDenied")
    assert len(denials) == 2
    assert denials[0]["subject_id"] == subject
    assert denials[0]["actor"] == {"id": compliance_id, "role": "compliance"}
    assert denials[0]["data"]["code"] == "purpose-required"
    assert denials[0]["data"]["route"] == "/consents/{subject_id}"
    assert denials[1]["data"]["code"] == "role-not-allowed"
    assert await api.events(event_type="consent.ConsentRecordsRead") == []


async def test_bad_subject_id_is_a_validation_problem(client, tokens) -> None:
    _, staff = tokens.headers("staff")
    response = await client.get("/consents/not-a-uuid", headers={**staff, "X-Purpose": "support"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_gpc_header_is_recorded_once_as_withdrawal(api, client, tokens) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    await client.put(
        "/consents/me/cookies.analytics", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    first = await client.get("/consents/me", headers={**me, "Sec-GPC": "1"})
    assert first.status_code == 200
    assert sorted(first.json()["gpc_recorded"]) == ["cookies.analytics", "data.sale_sharing"]
    states = {c["purpose"]: c for c in first.json()["items"]}
    assert states["cookies.analytics"]["granted"] is False
    assert states["cookies.analytics"]["method"] == "gpc"
    assert states["data.sale_sharing"]["granted"] is False

    again = await client.get("/consents/me", headers={**me, "Sec-GPC": "1"})
    assert again.json()["gpc_recorded"] == []

    withdrawals = await api.events(subject_id=subject, event_type="consent.ConsentWithdrawn")
    assert sorted(w["data"]["purpose"] for w in withdrawals) == [
        "cookies.analytics",
        "data.sale_sharing",
    ]
    assert all(
        w["data"]["method"] == "gpc" and w["data"]["policy_version"] == "v1" for w in withdrawals
    )


async def test_explicit_choice_wins_over_gpc_for_its_own_purpose(api, client, tokens) -> None:
    await api.publish_policy("v1")
    _subject, me = tokens.headers("client")
    response = await client.put(
        "/consents/me/cookies.analytics",
        headers={**me, "Sec-GPC": "1"},
        json={"granted": True, "policy_version": "v1"},
    )
    assert response.status_code == 200
    states = {
        c["purpose"]: c for c in (await client.get("/consents/me", headers=me)).json()["items"]
    }
    assert states["cookies.analytics"]["granted"] is True
    assert states["data.sale_sharing"] == {
        **states["data.sale_sharing"],
        "granted": False,
        "method": "gpc",
    }

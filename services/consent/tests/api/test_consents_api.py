"""API tests: granting and withdrawing consents, staff reads with a purpose, GPC, bad input."""

from __future__ import annotations

import uuid

import pytest

from mmgen.runtime.testing import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_grant_then_withdraw_is_one_step_each(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    body = {"granted": True, "policy_version": version}
    granted = await client.put("/consents/me/marketing.email", headers=me, json=body)
    assert granted.status_code == 200, granted.text
    assert granted.json()["granted"] is True
    assert granted.json()["method"] == "explicit"
    withdrawn = await client.put(
        "/consents/me/marketing.email", headers=me, json={**body, "granted": False}
    )
    assert withdrawn.status_code == 200
    mine = (await client.get("/consents/me", headers=me)).json()
    assert mine["subject_id"] == subject
    assert [(c["purpose"], c["granted"], c["policy_version"]) for c in mine["items"]] == [
        ("marketing.email", False, version)
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
        "policy_version": version,
        "method": "explicit",
    }
    assert stored[0]["actor"] == {"id": subject, "role": "client"}
    assert stored[0]["pii"]["owner"] == f"subject:{subject}"


async def test_repeating_the_same_decision_records_nothing_new(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("creator")
    body = {"granted": True, "policy_version": version}
    for _ in range(2):
        response = await client.put("/consents/me/profile.sensitive_sharing", headers=me, json=body)
        assert response.status_code == 200
    stored = await api.events(subject_id=subject)
    assert len(stored) == 1
    assert sorted(stored[0]["categories"]) == ["consent", "sensitive"]


async def test_consent_errors_are_problems_and_store_nothing(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    mark = await api.mark()
    body = {"granted": True, "policy_version": version}

    unknown = await client.put("/consents/me/cookies.everything", headers=me, json=body)
    assert_problem(unknown, 404, "purpose-not-found")
    not_consent = await client.put(
        "/consents/me/project_execution", headers=me, json={**body, "granted": False}
    )
    assert_problem(not_consent, 422, "purpose-not-consent-based")
    unpublished = await client.put(
        "/consents/me/marketing.email", headers=me, json={**body, "policy_version": "never-7"}
    )
    problem = assert_problem(unpublished, 422, "policy-version-unknown")
    assert problem["errors"][0]["field"] == "policy_version"

    for bad in (
        {"granted": "yes", "policy_version": version},
        {"policy_version": version},
        {"granted": True},
        {"granted": True, "policy_version": version, "subject_id": str(uuid.uuid4())},
        {"granted": True, "policy_version": "v1 ; drop"},
    ):
        response = await client.put("/consents/me/marketing.email", headers=me, json=bad)
        assert assert_problem(response, 422, "validation-failed")["errors"], bad

    assert await api.events(after=mark) == []
    assert (await client.get("/consents/me", headers=me)).json()["items"] == []
    assert await api.db["consents"].count_documents({"subject_id": subject}) == 0


async def test_a_malformed_json_body_is_a_400_naming_the_position(api, client, tokens) -> None:
    version = await api.publish_policy()
    _, me = tokens.headers("client")
    mark = await api.mark()
    response = await client.put(
        "/consents/me/marketing.email",
        headers={**me, "Content-Type": "application/json"},
        content=f'{{"granted": tru, "policy_version": "{version}"}}',
    )
    problem = assert_problem(response, 400, "malformed-json")
    assert problem["position"] == 12
    assert await api.events(after=mark) == []


async def test_consents_need_a_person_token(api, client, tokens) -> None:
    version = await api.publish_policy()
    mark = await api.mark()
    assert_problem(await client.get("/consents/me"), 401)
    _, service = tokens.headers("service", subject="retention")
    refused = await client.put(
        "/consents/me/marketing.email",
        headers=service,
        json={"granted": True, "policy_version": version},
    )
    assert_problem(refused, 403)
    denials = await api.events(after=mark, event_type="consent.AccessDenied")
    assert [d["data"]["code"] for d in denials] == ["unauthenticated", "role-not-allowed"]
    assert [d["schema_version"] for d in denials] == [2, 2]


async def test_staff_read_with_purpose_is_audited(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "cookies.analytics", version)
    staff_id, staff = tokens.headers("staff", purpose="support")
    response = await client.get(f"/consents/{subject}", headers=staff)
    assert response.status_code == 200
    assert [c["purpose"] for c in response.json()["items"]] == ["cookies.analytics"]

    (read,) = await api.events(event_type="consent.ConsentRecordsRead", subject_id=subject)
    assert read["action"] == "read"
    assert read["actor"] == {"id": staff_id, "role": "staff"}
    assert read["purpose"] == "support"
    assert read["data"] == {"records": 1}


async def test_staff_read_without_purpose_is_refused_and_audited(api, client, tokens) -> None:
    subject = str(uuid.uuid4())
    compliance_id, compliance = tokens.headers("compliance")
    refused = await client.get(f"/consents/{subject}", headers=compliance)
    assert_problem(refused, 403, "purpose-required")
    _, other_client = tokens.headers("client", purpose="support")
    assert_problem(await client.get(f"/consents/{subject}", headers=other_client), 403)

    denials = await api.events(event_type="consent.AccessDenied", subject_id=subject)
    assert len(denials) == 2
    assert denials[0]["actor"] == {"id": compliance_id, "role": "compliance"}
    assert denials[0]["data"]["code"] == "purpose-required"
    assert denials[0]["data"]["route"] == "/consents/{subject_id}"
    assert denials[1]["data"]["code"] == "role-not-allowed"
    assert await api.events(event_type="consent.ConsentRecordsRead", subject_id=subject) == []


async def test_bad_subject_id_is_a_validation_problem(client, tokens) -> None:
    _, staff = tokens.headers("staff", purpose="support")
    assert_problem(await client.get("/consents/not-a-uuid", headers=staff), 422)


async def test_gpc_header_is_recorded_once_as_withdrawal(api, client, tokens) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "cookies.analytics", version)
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
        w["data"]["method"] == "gpc" and w["data"]["policy_version"] == version for w in withdrawals
    )


async def test_explicit_choice_wins_over_gpc_for_its_own_purpose(api, client, tokens) -> None:
    version = await api.publish_policy()
    _subject, me = tokens.headers("client")
    response = await client.put(
        "/consents/me/cookies.analytics",
        headers={**me, "Sec-GPC": "1"},
        json={"granted": True, "policy_version": version},
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

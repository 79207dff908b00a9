"""Privacy requests over HTTP: who may file and read them, the list, deadlines, the steps staff
take, and the refusals — each a problem, each refusal recorded as `retention.AccessDenied`."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from mmgen.runtime.testing import assert_problem

from .conftest import Api, subject_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _compliance(api: Api, purpose: str | None = "legal_compliance") -> dict[str, str]:
    return api.world.tokens.headers("compliance", purpose=purpose)[1]


async def _file(api: Api, headers: dict[str, str], kind: str = "access", **body: str) -> dict:
    response = await api.client.post(
        "/privacy-requests", headers=headers, json={"type": kind, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_subject_files_one_open_request_per_type_with_a_one_month_deadline(
    api: Api,
) -> None:
    subject, headers = subject_headers(api)
    first = await _file(api, headers, "rectification", details="my city is wrong")
    assert first["subject_id"] == subject and first["on_behalf"] is False
    assert first["status"] == "received"
    received = date.fromisoformat(first["received_at"][:10])
    due = date.fromisoformat(first["deadline"]["due_on"])
    assert 28 <= (due - received).days <= 31
    again = await api.client.post(
        "/privacy-requests", headers=headers, json={"type": "rectification", "details": "again"}
    )
    assert again.status_code == 200 and again.json()["request_id"] == first["request_id"]
    mine = await api.client.get(f"/privacy-requests/{first['request_id']}", headers=headers)
    assert mine.status_code == 200 and mine.json()["timeline"][0]["step"] == "received"
    reads = await api.stored(event_type="retention.DataAccessed", subject_id=subject)
    assert reads and reads[-1]["actor"]["id"] == subject


async def test_refusals_are_problems_and_audited(api: Api) -> None:
    subject, headers = subject_headers(api)
    request = await _file(api, headers)
    path = f"/privacy-requests/{request['request_id']}"

    anonymous = await api.client.get(path)
    assert_problem(anonymous, 401, "unauthenticated")
    intruder, other = subject_headers(api)
    refused = await api.client.get(path, headers=other)
    assert_problem(refused, 403, "not-your-request")
    no_purpose = await api.client.get(path, headers=_compliance(api, None))
    assert_problem(no_purpose, 403, "purpose-required")
    wrong_purpose = await api.client.get(path, headers=_compliance(api, "support"))
    assert_problem(wrong_purpose, 403, "purpose-not-allowed")
    staff = await api.client.get(
        path, headers=api.world.tokens.headers("staff", purpose="legal_compliance")[1]
    )
    assert_problem(staff, 403, "not-your-request")
    _, admin = api.world.tokens.headers("admin", purpose="legal_compliance")
    filing = await api.client.post("/privacy-requests", headers=admin, json={"type": "access"})
    assert_problem(filing, 403, "role-not-allowed")

    denied = await api.stored(
        event_type="retention.AccessDenied", actor={"id": intruder, "role": "creator"}
    )
    assert [d["data"]["code"] for d in denied] == ["not-your-request"]
    assert denied[0]["data"]["target_id"] == request["request_id"]
    assert denied[0]["data"]["route"] == "/privacy-requests/{request_id}"

    missing = await api.client.get(f"/privacy-requests/{uuid.uuid4()}", headers=_compliance(api))
    assert_problem(missing, 404, "privacy-request-not-found")
    malformed = await api.client.post(
        "/privacy-requests", headers=headers, json={"type": "erasure", "role": "admin"}
    )
    assert_problem(malformed, 422)
    nothing = await api.stored(event_type="retention.PrivacyRequestReceived", subject_id=subject)
    assert len(nothing) == 1


async def test_compliance_lists_requests_page_by_page_and_by_status(api: Api) -> None:
    for _ in range(3):
        await _file(api, subject_headers(api)[1], "rectification", details="wrong name")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "status": "received"} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get("/privacy-requests", headers=_compliance(api), params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        assert {item["status"] for item in body["items"]} <= {"received"}
        seen.extend(item["request_id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 3
    overdue = await api.client.get(
        "/privacy-requests", headers=_compliance(api), params={"overdue": "true"}
    )
    assert overdue.status_code == 200 and overdue.json()["items"] == []
    _, creator = subject_headers(api)
    refused = await api.client.get("/privacy-requests", headers=creator)
    assert_problem(refused, 403, "role-not-allowed")
    bad_cursor = await api.client.get(
        "/privacy-requests", headers=_compliance(api), params={"cursor": "%%%"}
    )
    assert_problem(bad_cursor, 400, "invalid-cursor")


async def test_one_extension_with_a_reason_and_never_without(api: Api) -> None:
    _, headers = subject_headers(api)
    request = await _file(api, headers, "rectification", details="wrong phone")
    path = f"/privacy-requests/{request['request_id']}/extension"
    without = await api.client.post(path, headers=_compliance(api), json={"months": 2})
    assert_problem(without, 422, "extension-invalid")
    blank = await api.client.post(
        path, headers=_compliance(api), json={"months": 2, "reason": "  "}
    )
    assert_problem(blank, 422, "extension-invalid")
    extended = await api.client.post(
        path, headers=_compliance(api), json={"months": 2, "reason": "three services involved"}
    )
    assert extended.status_code == 200, extended.text
    deadline = extended.json()["deadline"]
    assert deadline["extension"]["reason"] == "three services involved"
    assert deadline["due_on"] > request["deadline"]["due_on"]
    twice = await api.client.post(
        path, headers=_compliance(api), json={"months": 1, "reason": "still busy"}
    )
    assert_problem(twice, 422, "extension-invalid")
    by_subject = await api.client.post(path, headers=headers, json={"months": 1, "reason": "x"})
    assert_problem(by_subject, 403, "role-not-allowed")


async def test_staff_resolve_a_rectification_and_compliance_rejects_with_a_reason(
    api: Api,
) -> None:
    _, headers = subject_headers(api)
    no_details = await api.client.post(
        "/privacy-requests", headers=headers, json={"type": "rectification"}
    )
    assert_problem(no_details, 422)
    rect = await _file(api, headers, "rectification", details="my surname is misspelt")
    _, staff = api.world.tokens.headers("staff", purpose="legal_compliance")
    resolved = await api.client.post(
        f"/privacy-requests/{rect['request_id']}/resolution",
        headers=staff,
        json={"service": "identity", "note": "corrected through identity"},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "completed"

    access = await _file(api, headers, "access")
    wrong_type = await api.client.post(
        f"/privacy-requests/{access['request_id']}/resolution",
        headers=staff,
        json={"service": "identity", "note": "nothing to fix"},
    )
    assert_problem(wrong_type, 409, "request-type-mismatch")
    blank = await api.client.post(
        f"/privacy-requests/{access['request_id']}/rejection",
        headers=_compliance(api),
        json={"reason": "   "},
    )
    assert_problem(blank, 422, "request-invalid")


async def test_a_request_once_rejected_is_final(api: Api) -> None:
    _, headers = subject_headers(api)
    request = await _file(api, headers, "rectification", details="everything")
    path = f"/privacy-requests/{request['request_id']}"
    rejected = await api.client.post(
        f"{path}/rejection", headers=_compliance(api), json={"reason": "manifestly excessive"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["rejection_reason"] == "manifestly excessive"
    again = await api.client.post(
        f"{path}/rejection", headers=_compliance(api), json={"reason": "still"}
    )
    assert_problem(again, 409, "illegal-transition")

"""Erasure through the running app, on the real broker and database.

retention's `EraseSubject` reaches `retention.commands` (and `retention.events`), retention
obeys it itself through the runtime, the other services' answers come back on their topics and
in the audit log, and the request is `verified` only once every footprint is clean; the
receipt then verifies against the audit log's signed head. Holds end `partially_completed`
and release to `verified`; a silent service keeps the request in progress, named.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from mmgen.auditlog.receipt import open_receipt, parse_jwks, verify_receipt
from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all
from mmgen.platform.auth import StaticKeySet
from mmgen.runtime.commands import CommandVerifier
from mmgen.runtime.erasure import parse_erase
from mmgen.runtime.testing import assert_problem, eventually

from ..harness import ORIGIN
from .conftest import OTHERS, Api, subject_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _erase(api: Api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/privacy-requests", headers=headers, json={"type": "erasure", **body}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _command(api: Api, subject: str, after: int = 0) -> Envelope:
    """The latest `retention.EraseSubject` for `subject` in retention's store."""
    docs = await eventually(
        lambda: api.stored(
            event_type="retention.EraseSubject", subject_id=subject, producer_seq={"$gt": after}
        )
    )
    return Envelope.from_document(docs[-1])


async def _answer_everywhere(api: Api, command: Envelope) -> None:
    """identity and consent answer; retention's own answer (made by its runtime) is audited."""
    for service in OTHERS:
        await api.world.answer(command, service)
    own = await api.stored_one(event_type="retention.SubjectErased", causation_id=command.event_id)
    await api.world.audit(own)


async def _mark(api: Api) -> int:
    last = await api.db["events"].find_one({}, sort=[("producer_seq", -1)])
    return int(last["producer_seq"]) if last else 0


async def test_an_erasure_is_commanded_answered_verified_and_receipted(api: Api) -> None:
    subject, headers = subject_headers(api)
    request = await _erase(api, headers)
    assert request["status"] == "in_progress"
    assert request["expected_services"] == ["consent", "identity", "retention"]

    # The command is an event of retention's store, on retention.commands as every service
    # reads it, accepted by the runtime's parser as it stands, and signed with the key
    # retention publishes (what every service checks before obeying).
    command = await _command(api, subject)
    assert {k: v for k, v in command.data.items() if k != "signature"} == {
        "request_id": request["request_id"],
        "subject_id": subject,
        "categories_held": [],
    }
    published = (await api.client.get("/.well-known/jwks.json")).json()
    await CommandVerifier(StaticKeySet.from_jwks(published)).verify(command)
    order = parse_erase(command)
    assert (order.subject_id, order.request_id) == (subject, request["request_id"])
    topic = api.retention.settings.topic("retention.commands")
    on_topic = await eventually(
        lambda: _commands_on_topic(api, topic, command.event_id), timeout=20
    )
    assert on_topic == [command]

    await _answer_everywhere(api, command)
    done = await api.wait_status(request["request_id"], "verified")
    assert sorted(done["acknowledgements"]) == ["consent", "identity", "retention"]
    assert {p["service"]: p["state"] for p in done["progress"]} == {
        "consent": "clean",
        "identity": "clean",
        "retention": "clean",
    }
    assert [t["step"] for t in done["timeline"]][-1] == "verified"

    # identity's SubjectErased revoked the subject's tokens here too: compliance hands the
    # receipt over (the subject's account no longer exists).
    gone = await api.client.get(f"/privacy-requests/{request['request_id']}", headers=headers)
    assert_problem(gone, 401, "invalid-token")
    receipt = await api.client.get(
        f"/privacy-requests/{request['request_id']}/receipt", headers=_compliance(api)
    )
    assert receipt.status_code == 200, receipt.text
    assert receipt.headers["content-type"] == "application/jose"
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    token = receipt.text
    opened = open_receipt(token, parse_jwks(jwks))
    assert opened.subject_id == subject
    assert {s.service: s.audit_seq for s in opened.services} == {
        service: done["acknowledgements"][service]["audit_seq"]
        for service in done["acknowledgements"]
    }
    size = opened.checkpoint.tree_size
    verdict = verify_receipt(
        token,
        keys=parse_jwks(jwks),
        log_key=api.world.log.signer.verifier().to_string(),
        evidence=api.world.log.evidence(size),
        origin=ORIGIN,
    )
    assert verdict.valid, verdict.reason
    # Reading the receipt is recorded with its reader.
    reads = await api.stored(event_type="retention.DataAccessed", subject_id=subject)
    assert any(
        r["resource"]["type"] == "resource" and "receipt" in r["data"]["route"] for r in reads
    )


async def _commands_on_topic(api: Api, topic: str, command_id: str) -> list[Envelope]:
    records = await read_all(
        api.retention.settings.kafka_bootstrap, topic, expect=10_000, timeout_s=1
    )
    return [
        Envelope.from_wire(r.value)
        for r in records
        if json.loads(r.value)["event_id"] == command_id
    ]


async def test_retention_erases_its_own_data_and_says_so(api: Api) -> None:
    """A rectification's details are retention's own personal data: shredded with the key."""
    subject, headers = subject_headers(api)
    rect = await api.client.post(
        "/privacy-requests",
        headers=headers,
        json={"type": "rectification", "details": "my phone number is wrong"},
    )
    assert rect.status_code == 201, rect.text
    before = await api.retention.participant.footprint(subject)
    assert before.categories["account"].readable_personal_fields == 1

    request = await _erase(api, headers)
    command = await _command(api, subject)
    own = await api.stored_one(event_type="retention.SubjectErased", causation_id=command.event_id)
    assert own.data["keys_shredded"] == 1 and own.data["request_id"] == request["request_id"]
    after = await api.retention.participant.footprint(subject)
    assert after.key_erased and after.readable_personal_fields == 0
    assert after.categories["account"].records == 2  # the requests stay, as evidence


async def test_a_silent_service_keeps_the_request_in_progress_named(api: Api) -> None:
    subject, headers = subject_headers(api)
    request = await _erase(api, headers)
    command = await _command(api, subject)
    await api.world.answer(command, "identity")  # consent says nothing
    own = await api.stored_one(event_type="retention.SubjectErased", causation_id=command.event_id)
    await api.world.audit(own)
    state = await eventually(
        lambda: api.request(request["request_id"]),
        until=lambda r: (
            sorted(r["acknowledgements"]) == ["identity", "retention"]
            and {p["service"]: p["state"] for p in r["progress"]}.get("identity") == "clean"
        ),
    )
    assert state["status"] == "in_progress"
    waiting = {p["service"]: p for p in state["progress"]}["consent"]
    assert waiting["state"] == "pending"

    await api.world.answer(command, "consent")
    await api.wait_status(request["request_id"], "verified")


async def test_a_service_still_showing_data_keeps_it_in_progress(api: Api) -> None:
    subject, headers = subject_headers(api)
    api.world.footprint("identity", subject, contact=2)
    request = await _erase(api, headers)
    command = await _command(api, subject)
    await _answer_everywhere(api, command)
    state = await eventually(
        lambda: api.request(request["request_id"]),
        until=lambda r: (
            {p["service"]: p["state"] for p in r["progress"]}.get("identity") == "residual"
        ),
    )
    assert state["status"] == "in_progress"
    api.world.footprint("identity", subject)
    run = await api.client.post("/retention/run", headers=_compliance(api))
    assert run.status_code == 200, run.text
    await api.wait_status(request["request_id"], "verified")


def _compliance(api: Api) -> dict[str, str]:
    return api.world.tokens.headers("compliance", purpose="legal_compliance")[1]


async def test_a_hold_ends_partially_completed_naming_it_and_release_verifies(api: Api) -> None:
    subject, headers = subject_headers(api)
    placed = await api.client.post(
        "/retention/holds",
        headers=_compliance(api),
        json={
            "subject_id": subject,
            "categories": ["payment"],
            "legal_basis": "tax law: invoices kept 10 years",
            "owner": "finance",
        },
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    request = await _erase(api, headers)
    command = await _command(api, subject)
    assert command.data["categories_held"] == ["payment"]
    await _answer_everywhere(api, command)
    partial = await api.wait_status(request["request_id"], "partially_completed")
    assert [(h["category"], h["hold_id"], h["legal_basis"]) for h in partial["held"]] == [
        ("payment", hold["hold_id"], "tax law: invoices kept 10 years")
    ]
    receipt = await api.client.get(
        f"/privacy-requests/{request['request_id']}/receipt", headers=_compliance(api)
    )
    assert receipt.status_code == 200, receipt.text

    mark = await _mark(api)
    released = await api.client.delete(
        f"/retention/holds/{hold['hold_id']}", headers=_compliance(api)
    )
    assert released.status_code == 200, released.text
    assert released.json()["release_reason"] == "released"
    second = await _command(api, subject, after=mark)
    assert second.event_id != command.event_id and second.data["categories_held"] == []
    await _answer_everywhere(api, second)
    done = await api.wait_status(request["request_id"], "verified")
    assert done["held"] == []

    again = await api.client.delete(f"/retention/holds/{hold['hold_id']}", headers=_compliance(api))
    assert_problem(again, 409, "hold-released")


async def test_an_erasure_needs_a_recent_sign_in_or_the_password(api: Api) -> None:
    subject = str(uuid.uuid4())
    stale = api.world.stale_headers("creator", subject)
    refused = await api.client.post("/privacy-requests", headers=stale, json={"type": "erasure"})
    body = assert_problem(refused, 401, "recent-sign-in-required")
    assert body["max_age"] == 300
    assert "insufficient_user_authentication" in refused.headers["www-authenticate"]
    # A token that does not say when its sign-in was is never taken as recent, however new.
    unknown = api.world.headers_without_sign_in_time("creator", subject)
    unsaid = await api.client.post("/privacy-requests", headers=unknown, json={"type": "erasure"})
    assert_problem(unsaid, 401, "recent-sign-in-required")

    wrong = await api.client.post(
        "/privacy-requests",
        headers=stale,
        json={"type": "erasure", "email": "mia@example.test", "password": "not-hers"},
    )
    assert_problem(wrong, 401, "reauthentication-failed")

    # identity signs someone else in with these credentials: not this subject's proof
    _, other_token = api.world.tokens("creator")
    api.world.passwords.accounts[("eve@example.test", "hers")] = other_token
    impostor = await api.client.post(
        "/privacy-requests",
        headers=stale,
        json={"type": "erasure", "email": "eve@example.test", "password": "hers"},
    )
    assert_problem(impostor, 401, "reauthentication-failed")

    _, own_token = api.world.tokens("creator", subject)
    api.world.passwords.accounts[("mia@example.test", "right")] = own_token
    accepted = await api.client.post(
        "/privacy-requests",
        headers=stale,
        json={"type": "erasure", "email": "mia@example.test", "password": "right"},
    )
    assert accepted.status_code == 201, accepted.text
    denials = await api.stored(
        event_type="retention.AccessDenied", actor={"id": subject, "role": "creator"}
    )
    assert {d["data"]["code"] for d in denials} >= {
        "recent-sign-in-required",
        "reauthentication-failed",
    }
    # nothing of the refused attempts was recorded as a request
    received = await api.stored(event_type="retention.PrivacyRequestReceived", subject_id=subject)
    assert len(received) == 1


async def test_an_erasure_by_an_account_with_totp_needs_its_code_too(api: Api) -> None:
    subject = str(uuid.uuid4())
    stale = api.world.stale_headers("client", subject)
    _, own_token = api.world.tokens("client", subject)
    api.world.passwords.accounts[("ada@example.test", "right")] = own_token
    api.world.passwords.second_factors["ada@example.test"] = {"123456", "rc-7f3a-91bd"}
    credentials = {"type": "erasure", "email": "ada@example.test", "password": "right"}

    missing = await api.client.post("/privacy-requests", headers=stale, json=credentials)
    body = assert_problem(missing, 401, "mfa-required")
    assert body["code"] == "mfa_required"
    assert "insufficient_user_authentication" in missing.headers["www-authenticate"]
    wrong = await api.client.post(
        "/privacy-requests", headers=stale, json={**credentials, "totp": "654321"}
    )
    assert_problem(wrong, 401, "reauthentication-failed")
    malformed = await api.client.post(
        "/privacy-requests", headers=stale, json={**credentials, "totp": "12 456"}
    )
    assert_problem(malformed, 422)
    received = await api.stored(event_type="retention.PrivacyRequestReceived", subject_id=subject)
    assert received == []

    accepted = await api.client.post(
        "/privacy-requests", headers=stale, json={**credentials, "totp": "123456"}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["type"] == "erasure"
    denials = await api.stored(
        event_type="retention.AccessDenied", actor={"id": subject, "role": "client"}
    )
    assert sorted(d["data"]["code"] for d in denials) == [
        "mfa-required",
        "reauthentication-failed",
    ]
    # The code was spent at "identity": it does not sign in a second time.
    assert api.world.passwords.second_factors["ada@example.test"] == {"rc-7f3a-91bd"}


async def test_a_recovery_code_stands_in_for_the_one_time_code(api: Api) -> None:
    subject = str(uuid.uuid4())
    stale = api.world.stale_headers("creator", subject)
    _, own_token = api.world.tokens("creator", subject)
    api.world.passwords.accounts[("lee@example.test", "right")] = own_token
    api.world.passwords.second_factors["lee@example.test"] = {"rc-0b1c-22de"}
    accepted = await api.client.post(
        "/privacy-requests",
        headers=stale,
        json={
            "type": "erasure",
            "email": "lee@example.test",
            "password": "right",
            "recovery_code": "rc-0b1c-22de",
        },
    )
    assert accepted.status_code == 201, accepted.text


async def test_staff_erase_on_behalf_with_the_legal_purpose_only(api: Api) -> None:
    subject = str(uuid.uuid4())
    _, staff = api.world.tokens.headers("staff")
    missing = await api.client.post(
        "/privacy-requests", headers=staff, json={"type": "erasure", "subject_id": subject}
    )
    assert_problem(missing, 403, "purpose-required")
    _, support = api.world.tokens.headers("staff", purpose="support")
    wrong = await api.client.post(
        "/privacy-requests", headers=support, json={"type": "erasure", "subject_id": subject}
    )
    assert_problem(wrong, 403, "purpose-not-allowed")
    _, legal = api.world.tokens.headers("staff", purpose="legal_compliance")
    nobody = await api.client.post("/privacy-requests", headers=legal, json={"type": "erasure"})
    assert_problem(nobody, 422, "subject-required")
    filed = await api.client.post(
        "/privacy-requests", headers=legal, json={"type": "erasure", "subject_id": subject}
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["on_behalf"] is True
    second = await api.client.post(
        "/privacy-requests", headers=legal, json={"type": "erasure", "subject_id": subject}
    )
    assert second.status_code == 200 and second.json()["request_id"] == filed.json()["request_id"]
    _, creator = subject_headers(api)
    other = await api.client.post(
        "/privacy-requests", headers=creator, json={"type": "access", "subject_id": subject}
    )
    assert_problem(other, 403, "on-behalf-not-allowed")

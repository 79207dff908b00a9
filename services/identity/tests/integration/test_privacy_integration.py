"""Personal data never in clear at rest or on Kafka, and `EraseSubject` erases it everywhere —
against the session's real broker and database, commands delivered through `retention.commands`."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all
from mmgen.runtime.contract import Footprint, SubjectExport
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running, passphrase, unique_email

pytestmark = pytest.mark.asyncio(loop_scope="module")


def distinctive_person() -> dict[str, Any]:
    """Values that cannot appear anywhere by accident, so a substring search is meaningful."""
    tag = secrets.token_hex(4)
    return {
        "email": unique_email(f"priv{tag}"),
        "password": passphrase(),
        "name": f"Zephyrine Quillbottom {tag}",
        "phone": f"+41 79 {secrets.randbelow(900) + 100} {secrets.randbelow(9000) + 1000}",
        "role": "client",
        "business": {"company_name": f"Quillbottom Holdings {tag}", "vat_number": f"CHE{tag}"},
    }


def plaintexts(person: dict[str, Any]) -> list[bytes]:
    values = [person["email"], person["name"], person["phone"], person["business"]["company_name"]]
    return [v.encode() for v in values] + [person["email"].split("@")[0].encode()]


async def database_dump(svc: Running) -> bytes:
    """Every document of every collection of identity's database, as bytes (BSON-ish repr)."""
    db = svc.db
    chunks: list[bytes] = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            chunks.append(repr(doc).encode())
            chunks.append(json.dumps(doc, default=str).encode())
    return b"\n".join(chunks)


async def test_no_plaintext_on_kafka_nor_in_the_database(svc: Running) -> None:
    person = distinctive_person()
    user = await svc.user_with_token(**person)
    await svc.client.patch("/users/me", headers=user["auth"], json={"name": person["name"] + " Jr"})
    ours = await svc.stored_events(subject_id=user["user_id"])
    assert len(ours) == 2
    records = await read_all(
        svc.settings.kafka_bootstrap, svc.events_topic, expect=ours[-1]["producer_seq"]
    )
    published = [r for r in records if r.key == user["user_id"].encode()]
    assert len(published) == 2
    for record in published:
        raw = record.value + b"".join(v for _, v in record.headers or [])
        for secret in plaintexts(person):
            assert secret not in raw
        envelope = Envelope.from_wire(record.value)
        assert envelope.pii is not None and envelope.pii.owner == f"subject:{user['user_id']}"
    dump = await database_dump(svc)
    for secret in plaintexts(person):
        assert secret not in dump


async def test_export_holds_everything_decrypted_but_the_password_hash(svc: Running) -> None:
    person = distinctive_person()
    user = await svc.user_with_token(**person)
    corrected = person["name"] + " Jr"
    await svc.client.patch("/users/me", headers=user["auth"], json={"name": corrected})
    staff = await svc.staff("staff")
    await svc.client.get(
        f"/users/{user['user_id']}", headers={**staff["auth"], "X-Purpose": "support"}
    )
    retention = await svc.service_auth("retention")
    response = await svc.client.get(
        f"/internal/subjects/{user['user_id']}/export", headers=retention
    )
    assert response.status_code == 200, response.text
    export = response.json()
    SubjectExport.model_validate(export)  # the contract's schema, as in every service
    assert export["service"] == "identity" and export["erased"] is False
    business = {**person["business"], "address": None}
    assert export["records"]["account"] == {
        "user_id": user["user_id"],
        "role": "client",
        "status": "active",
        "registered_by": "self",
        "email": person["email"],
        "name": corrected,
        "phone": person["phone"],
        "business": business,
        "password": {"held": True, "kind": "argon2id hash", "exported": False},
    }
    assert export["records"]["read_models"] == {"account_record": True, "refresh_tokens": 1}
    events = {e["event_type"]: e for e in export["events"]}
    assert list(events) == [
        "identity.UserRegistered",
        "identity.NameCorrected",
        "identity.UserRead",
    ]
    # Every event decrypted: the values as registered and as corrected, not just the latest.
    assert events["identity.UserRegistered"]["personal"] == {
        "email": person["email"],
        "name": person["name"],
        "phone": person["phone"],
        "business": business,
        "password_hash": {"held": True, "exported": False},
    }
    assert events["identity.NameCorrected"]["personal"] == {"name": corrected}
    read = events["identity.UserRead"]
    assert read["actor"] == {"id": staff["user_id"], "role": "staff"}
    assert read["purpose"] == "support" and read["personal"] is None
    # The password hash never leaves, in any form.
    password_hash = await svc.stored_password_hash(user["user_id"])
    assert password_hash not in response.text and "$argon2" not in response.text
    assert password_hash.split("$")[-1] not in response.text  # not even the digest


async def test_every_export_is_audited_with_its_caller_and_purpose(svc: Running) -> None:
    user = await svc.register()
    retention, cli = await svc.service_auth("retention"), await svc.service_auth("admin-cli")
    url = f"/internal/subjects/{user['user_id']}/export"
    assert (await svc.client.get(url, headers=retention)).status_code == 200
    # An export answers a request of access: no other purpose justifies one.
    refused = await svc.client.get(url, headers={**cli, "X-Purpose": "support"})
    assert refused.status_code == 403 and refused.json()["allowed_purposes"] == ["legal_compliance"]
    declared = {**cli, "X-Purpose": "legal_compliance"}
    second = await svc.client.get(url, headers=declared)
    assert second.status_code == 200
    audited = await svc.stored_events(
        subject_id=user["user_id"], event_type="identity.SubjectExported"
    )
    assert [(e["actor"], e["purpose"]) for e in audited] == [
        ({"id": "retention", "role": "service"}, "legal_compliance"),
        ({"id": "admin-cli", "role": "service"}, "legal_compliance"),
    ]
    [denied] = await svc.stored_events(
        subject_id=user["user_id"], event_type="identity.AccessDenied"
    )
    assert (denied["actor"], denied["purpose"]) == (
        {"id": "admin-cli", "role": "service"},
        "support",
    )
    first = audited[0]
    assert first["action"] == "read" and first["pii"] is None
    assert first["data"] == {"records": 2, "events": 1}  # account and read models; 1 event
    assert sorted(first["categories"]) == ["account", "business", "contact"]
    # The second export shows the first one and the refused one: the subject sees who took
    # their data, and who tried.
    exported = [e["event_type"] for e in second.json()["events"]]
    assert exported == [
        "identity.UserRegistered",
        "identity.SubjectExported",
        "identity.AccessDenied",
    ]


async def test_erase_subject_end_to_end(svc: Running) -> None:
    person = distinctive_person()
    user = await svc.user_with_token(**person)
    staff = await svc.staff("staff")
    await svc.client.get(
        f"/users/{user['user_id']}", headers={**staff["auth"], "X-Purpose": "support"}
    )
    retention = await svc.service_auth("retention")
    before = (
        await svc.client.get(f"/internal/subjects/{user['user_id']}/footprint", headers=retention)
    ).json()
    Footprint.model_validate(before)
    assert before["readable_personal_fields"] >= 5
    assert before["categories"]["contact"]["readable_personal_fields"] == 3
    exported = (
        await svc.client.get(f"/internal/subjects/{user['user_id']}/export", headers=retention)
    ).json()
    assert exported["records"]["account"]["email"] == person["email"]
    assert exported["records"]["account"]["password"]["exported"] is False
    assert "$argon2" not in json.dumps(exported)

    command_id = await svc.erase(user["user_id"])
    [event] = await svc.erased_events(user["user_id"])
    assert event["action"] == "erase" and event["causation_id"] == command_id
    assert event["schema_version"] == 2 and event["pii"] is None
    assert event["data"] == {
        "request_id": event["data"]["request_id"],
        "subject_id": user["user_id"],
        "keys_shredded": 1,
        # the account and its email reservation; the refresh token
        "records_deleted": {"account": 2, "security": 1},
        # the registration: its sealed fields are unreadable now
        "records_anonymized": {"account": 1, "business": 1, "contact": 1},
        "categories_held": [],
    }

    # Export: nothing personal; footprint: zero readable fields.
    export = await svc.client.get(f"/internal/subjects/{user['user_id']}/export", headers=retention)
    text = export.text.encode()
    for secret in plaintexts(person):
        assert secret not in text
    assert export.json()["erased"] is True
    assert export.json()["records"]["account"]["email"] == {"erased": True}
    footprint = (
        await svc.client.get(f"/internal/subjects/{user['user_id']}/footprint", headers=retention)
    ).json()
    assert footprint["readable_personal_fields"] == 0 and footprint["key_erased"] is True
    assert all(c["readable_personal_fields"] == 0 for c in footprint["categories"].values())

    # Login fails, the old token fails, and the raw store has nothing readable.
    login = await svc.client.post(
        "/auth/token", json={"email": person["email"], "password": person["password"]}
    )
    assert_problem(login, 401, "invalid-credentials")
    assert_problem(await svc.client.get("/users/me", headers=user["auth"]), 401, "invalid-token")
    keystore = svc.identity.kernel.keystore
    for doc in await svc.stored_events(subject_id=user["user_id"]):
        if doc.get("pii"):
            assert await keystore.key_for_read(doc["pii"]["owner"], doc["pii"]["key_id"]) is None
    dump = await database_dump(svc)
    for secret in plaintexts(person):
        assert secret not in dump

    # The same email registers again, as a new subject.
    again = await svc.register(email=person["email"], name="Someone Else")
    assert again["user_id"] != user["user_id"]
    await svc.login(person["email"], again["password"])


async def test_erase_is_idempotent_on_the_command_id(svc: Running) -> None:
    user = await svc.register()
    fixed_id = str(uuid.uuid4())
    await svc.erase(user["user_id"], event_id=fixed_id)
    await svc.erased_events(user["user_id"])
    await svc.erase(user["user_id"], event_id=fixed_id)  # redelivered
    # A new request for the same subject, on the same partition (key: the subject) after the
    # redelivered one: once its answer is there, the redelivery was consumed too.
    second = await svc.erase(user["user_id"])
    events = await svc.erased_events(user["user_id"], count=2)
    assert len(events) == 2
    assert events[1]["causation_id"] == second
    assert events[1]["data"]["keys_shredded"] == 0  # nothing left to erase
    assert events[1]["data"]["records_anonymized"] == {}


async def test_held_categories_keep_the_key_and_close_the_account(svc: Running) -> None:
    user = await svc.user_with_token()
    await svc.erase(user["user_id"], held=["contact"])
    [event] = await svc.erased_events(user["user_id"])
    assert event["data"]["keys_shredded"] == 0
    assert event["data"]["categories_held"] == ["contact"]
    assert_problem(await svc.client.get("/users/me", headers=user["auth"]), 401, "invalid-token")
    retention = await svc.service_auth("retention")
    footprint = (
        await svc.client.get(f"/internal/subjects/{user['user_id']}/footprint", headers=retention)
    ).json()
    assert footprint["categories"]["contact"]["readable_personal_fields"] > 0


async def test_export_and_footprint_of_an_unknown_subject(svc: Running) -> None:
    retention = await svc.service_auth("retention")
    nobody = str(uuid.uuid4())
    export = (await svc.client.get(f"/internal/subjects/{nobody}/export", headers=retention)).json()
    assert export["records"] == {} and export["events"] == []
    footprint = (
        await svc.client.get(f"/internal/subjects/{nobody}/footprint", headers=retention)
    ).json()
    assert footprint["readable_personal_fields"] == 0 and footprint["categories"] == {}
    Footprint.model_validate(footprint)
    assert_problem(
        await svc.client.get("/internal/subjects/nope/footprint", headers=retention),
        422,
        "validation-failed",
    )

"""Personal data never in clear at rest or on Kafka, and `EraseSubject` erases it everywhere —
against the session's real broker and database, commands delivered through `retention.commands`."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.identity.testing import (
    Running,
    assert_problem,
    erase_command,
    passphrase,
    stored_events,
    stored_password_hash,
    unique_email,
)

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
    db = svc.identity.adapters.db
    chunks: list[bytes] = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            chunks.append(repr(doc).encode())
            chunks.append(json.dumps(doc, default=str).encode())
    return b"\n".join(chunks)


async def erase(svc: Running, subject_id: str, held: list[str] | None = None, **fixed: Any) -> str:
    """Publish a `retention.EraseSubject` command as retention would; returns its event id."""
    command = erase_command(subject_id, held or (), **fixed)
    producer = AIOKafkaProducer(bootstrap_servers=svc.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            svc.settings.commands_topic, command.to_wire(), key=subject_id.encode()
        )
    finally:
        await producer.stop()
    return command.event_id


async def erased_events(svc: Running, subject_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def arrived() -> bool:
        docs = await stored_events(svc, subject_id=subject_id, event_type="identity.SubjectErased")
        return len(docs) >= count

    await wait_until(arrived, timeout_s=40, what="identity.SubjectErased")
    return await stored_events(svc, subject_id=subject_id, event_type="identity.SubjectErased")


async def test_no_plaintext_on_kafka_nor_in_the_database(svc: Running) -> None:
    person = distinctive_person()
    user = await svc.user_with_token(**person)
    await svc.client.patch("/users/me", headers=user["auth"], json={"name": person["name"] + " Jr"})
    ours = await stored_events(svc, subject_id=user["user_id"])
    assert len(ours) == 2
    records = await read_all(
        svc.settings.kafka_bootstrap, svc.settings.events_topic, expect=ours[-1]["producer_seq"]
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
    business = {**person["business"], "address": None}
    assert export["account"] == {
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
    assert export["read_models"] == {"account_record": True, "refresh_tokens": 1}
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
    password_hash = await stored_password_hash(svc, user["user_id"])
    assert password_hash not in response.text and "$argon2" not in response.text
    assert password_hash.split("$")[-1] not in response.text  # not even the digest


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
    assert before["readable_personal_fields"] >= 5
    assert before["categories"]["contact"]["readable_personal_fields"] == 3
    exported = (
        await svc.client.get(f"/internal/subjects/{user['user_id']}/export", headers=retention)
    ).json()
    assert exported["account"]["email"] == person["email"]
    assert exported["account"]["password"]["exported"] is False
    assert "$argon2" not in json.dumps(exported)

    command_id = await erase(svc, user["user_id"])
    [event] = await erased_events(svc, user["user_id"])
    assert event["action"] == "erase" and event["causation_id"] == command_id
    assert event["data"]["key_shredded"] is True
    assert event["data"]["events_made_unreadable"] == 1  # the registration's sealed fields
    assert event["data"]["read_models_deleted"] >= 3  # account, email index, refresh token
    assert event["pii"] is None

    # Export: nothing personal; footprint: zero readable fields.
    export = await svc.client.get(f"/internal/subjects/{user['user_id']}/export", headers=retention)
    text = export.text.encode()
    for secret in plaintexts(person):
        assert secret not in text
    assert export.json()["account"]["email"] == {"erased": True}
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
    keystore = svc.identity.adapters.keystore
    for doc in await stored_events(svc, subject_id=user["user_id"]):
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
    await erase(svc, user["user_id"], event_id=fixed_id)
    await erased_events(svc, user["user_id"])
    await erase(svc, user["user_id"], event_id=fixed_id)  # redelivered
    second = await erase(svc, user["user_id"])  # a new request for the same subject
    events = await erased_events(svc, user["user_id"], count=2)
    assert len(events) == 2
    assert events[1]["causation_id"] == second
    assert events[1]["data"]["events_made_unreadable"] == 0  # nothing left to erase


async def test_held_categories_keep_the_key_and_close_the_account(svc: Running) -> None:
    user = await svc.user_with_token()
    await erase(svc, user["user_id"], held=["contact"])
    [event] = await erased_events(svc, user["user_id"])
    assert event["data"]["key_shredded"] is False
    assert event["data"]["held_categories"] == ["contact"]
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
    assert export["account"] is None and export["events"] == []
    footprint = (
        await svc.client.get(f"/internal/subjects/{nobody}/footprint", headers=retention)
    ).json()
    assert footprint["readable_personal_fields"] == 0 and footprint["categories"] == {}
    assert_problem(
        await svc.client.get("/internal/subjects/nope/footprint", headers=retention), 404
    )

"""API tests: the erasure contract (EraseSubject over Kafka, export, footprint), no plaintext
personal values at rest in the event store, relay publishing, readiness, AsyncAPI."""

from __future__ import annotations

import json
import uuid
from typing import Any

import bson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all
from mmgen.runtime.testing import (
    anonymize_command,
    assert_problem,
    erase_command,
    eventually,
    publish_command,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARKER_AGENT = "Browser/1.0 marker-"
EVENT_PAGE = "/secret-page-"
PURPOSE = {"X-Purpose": "legal_compliance"}


async def _seed_subject(api, client, tokens) -> tuple[str, dict[str, str], str, str]:
    """A subject with consents and accepted analytics events carrying recognisable values."""
    version = await api.publish_policy()
    marker = uuid.uuid4().hex
    subject, me = tokens.headers("client")
    me = {**me, "User-Agent": MARKER_AGENT + marker}
    for purpose in ("cookies.analytics", "marketing.email"):
        await api.grant(me, purpose, version)
    for i in range(2):
        response = await client.post(
            "/tracking/events",
            headers=me,
            json={
                "name": "page_view",
                "page": EVENT_PAGE + marker,
                "properties": {"q": f"{marker}-{i}"},
            },
        )
        assert response.json()["accepted"] is True
    return subject, me, marker, version


async def _send_command(settings: Any, command: Envelope) -> RecordMetadata:
    """Publish `command` on retention.commands; where it landed (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        return await producer.send_and_wait(
            settings.topic("retention.commands"), command.to_wire(), key=command.kafka_key()
        )
    finally:
        await producer.stop()


async def _wait_until_consumed(settings: Any, sent: RecordMetadata) -> None:
    """Until the inbox group has committed an offset past `sent`: the consumer commits only
    after the record's effect (or its skip as a duplicate) is done."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.commands_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partition = TopicPartition(sent.topic, sent.partition)

        async def committed() -> int:
            return (await consumer.committed(partition)) or 0

        await eventually(committed, until=lambda offset: offset > sent.offset, timeout=30)
    finally:
        await consumer.stop()


def _personal(export: dict, event_type: str) -> list[dict]:
    return [e["personal"] for e in export["events"] if e["event_type"] == event_type]


async def test_raw_event_documents_hold_no_plaintext_personal_values(api, client, tokens) -> None:
    subject, _, marker, _ = await _seed_subject(api, client, tokens)
    docs = await api.events(subject_id=subject)
    assert len(docs) == 4
    raw = b"".join(bson.encode(doc) for doc in docs)
    assert marker.encode() not in raw
    assert MARKER_AGENT.encode() not in raw
    assert EVENT_PAGE.encode() not in raw
    # ...while the export, for the subject's own access request, decrypts them.
    _, retention = tokens.headers("service", subject="retention", purpose="legal_compliance")
    response = await client.get(f"/internal/subjects/{subject}/export", headers=retention)
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["service"] == "consent" and export["erased"] is False
    tracked = _personal(export, "consent.TrackingEventAccepted")
    assert {p["page"] for p in tracked} == {EVENT_PAGE + marker}
    granted = _personal(export, "consent.ConsentGranted")
    assert {p["user_agent"] for p in granted} == {MARKER_AGENT + marker}
    consents = sorted(k for k in export["records"] if k.startswith("consent:"))
    assert consents == ["consent:cookies.analytics", "consent:marketing.email"]
    assert len(export["records"]) == 4  # two decisions, two analytics events
    # The export itself is audited: the caller and the purpose, counts only.
    (exported,) = await api.events(event_type="consent.SubjectExported", subject_id=subject)
    assert exported["action"] == "read"
    assert exported["actor"] == {"id": "retention", "role": "service"}
    assert exported["purpose"] == "legal_compliance"
    assert exported["data"] == {"records": 4, "events": 4}
    assert marker not in json.dumps(exported, default=str)


async def test_internal_routes_need_retention_service_token(api, client, tokens) -> None:
    subject = str(uuid.uuid4())
    for path in (f"/internal/subjects/{subject}/export", f"/internal/subjects/{subject}/footprint"):
        assert_problem(await client.get(path), 401)
        _, person = tokens.headers("compliance", purpose="legal_compliance")
        assert_problem(await client.get(path, headers=person), 403)
        _, other = tokens.headers("service", subject="projects")
        assert_problem(await client.get(path, headers=other), 403)
    denials = await api.events(event_type="consent.AccessDenied", subject_id=subject)
    assert len(denials) == 6
    assert await api.events(event_type="consent.SubjectExported", subject_id=subject) == []


async def test_erase_subject_brings_footprint_to_zero(api, client, tokens, settings) -> None:
    subject, me, marker, version = await _seed_subject(api, client, tokens)
    _, retention = tokens.headers("service", subject="retention")
    footprint_url = f"/internal/subjects/{subject}/footprint"
    before = (await client.get(footprint_url, headers=retention)).json()
    assert before["categories"]["consent"]["records"] > 0
    assert before["categories"]["usage"]["records"] == 2
    assert before["readable_personal_fields"] > 0

    command = erase_command(subject)
    await publish_command(settings, command)

    # The answer is appended after the work is done (the work runs before the consumer's
    # transaction), so the footprint can read zero a moment before the answer is stored:
    # wait for the answer, then the footprint must already be zero.
    (erased,) = await eventually(
        lambda: api.events(event_type="consent.SubjectErased", subject_id=subject),
        until=lambda found: len(found) > 0,
        timeout=30,
    )
    after = (await client.get(footprint_url, headers=retention)).json()
    assert after["readable_personal_fields"] == 0 and after["total_records"] == 0
    assert erased["action"] == "erase"
    assert erased["causation_id"] == command.event_id
    assert erased["schema_version"] == 2
    assert erased["data"] == {
        "request_id": command.data["request_id"],
        "subject_id": subject,
        "keys_shredded": 1,
        "records_deleted": {"consent": 2, "usage": 2},
        "records_anonymized": {},
        "categories_held": [],
    }
    export = (
        await client.get(f"/internal/subjects/{subject}/export", headers={**retention, **PURPOSE})
    ).json()
    assert export["erased"] is True
    assert export["records"] == {}
    assert _personal(export, "consent.ConsentGranted") == [{"erased": True}] * 2
    assert marker not in json.dumps(export)

    # A redelivered command is not applied twice; nothing new is recorded for the subject.
    # Assert only once the inbox has committed past the re-sent record: before that, a
    # second answer could still be on its way and the check below could not fail.
    resent = await _send_command(settings, command)
    await _wait_until_consumed(settings, resent)
    gone = await client.put(
        "/consents/me/marketing.email",
        headers=me,
        json={"granted": True, "policy_version": version},
    )
    assert_problem(gone, 410, "subject-erased")
    dropped = await client.post("/tracking/events", headers=me, json={"name": "page_view"})
    assert dropped.json()["reason"] == "subject_erased"
    assert len(await api.events(event_type="consent.SubjectErased", subject_id=subject)) == 1


async def test_relay_publishes_consent_events(api, client, tokens, settings) -> None:
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "marketing.email", version)
    stored = await api.db["events"].count_documents({})
    records = await read_all(
        settings.kafka_bootstrap, settings.topic("consent.events"), expect=stored
    )
    envelopes = {Envelope.from_wire(r.value).event_id: r for r in records}
    (granted,) = await api.events(subject_id=subject)
    record = envelopes[granted["_id"]]
    envelope = Envelope.from_wire(record.value)
    assert envelope.event_type == "consent.ConsentGranted"
    assert envelope.producer == "consent" and envelope.pii is not None
    assert record.key == subject.encode()


async def test_readiness_asyncapi_and_audit_trail(api, client, tokens) -> None:
    async def checks() -> dict[str, str]:
        ready = await client.get("/readyz")
        return ready.json()["checks"] if ready.status_code == 200 else {}

    # The module's earlier tests leave events in flight: a gap they open closes by repair.
    found = await eventually(checks, until=lambda c: c.get("audit-projector") == "no open gaps")
    assert {"database", "broker", "relay", "inbox", "projections"} <= set(found)
    asyncapi = (await client.get("/asyncapi.json")).json()
    text = json.dumps(asyncapi)
    for event_type in (
        "consent.ConsentGranted",
        "consent.ConsentWithdrawn",
        "consent.SubjectErased",
        "consent.SubjectExported",
    ):
        assert event_type in text
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/consents/me/{purpose}",
        "/tracking/events",
        "/audit/entries",
        "/internal/subjects/{subject_id}/export",
        "/asyncapi.json",
    ):
        assert path in paths

    # A consent decision reaches the audit log (through the relay and the projector): ids only.
    version = await api.publish_policy()
    subject, me = tokens.headers("client")
    await api.grant(me, "marketing.email", version)
    officer, compliance = tokens.headers("compliance", purpose="legal_compliance")

    async def audited(event_type: str) -> list[dict[str, object]]:
        response = await client.get(
            "/audit/entries",
            params={"subject_id": subject, "event_type": event_type},
            headers=compliance,
        )
        return response.json()["items"] if response.status_code == 200 else []

    (entry,) = await eventually(lambda: audited("consent.ConsentGranted"), timeout=30)
    assert entry["event_type"] == "consent.ConsentGranted"
    assert entry["action"] == "consent"
    assert entry["actor_id"] == subject
    assert entry["categories"] == ["consent", "contact"]
    # Those queries are themselves audited: a consent.DataAccessed per read, with the
    # officer's id and declared purpose, about the subject they named.
    reads = await eventually(lambda: audited("consent.DataAccessed"), timeout=30)
    assert {r["actor_id"] for r in reads} == {officer}
    assert {r["purpose"] for r in reads} == {"legal_compliance"}
    assert {r["action"] for r in reads} == {"read"}
    # A refusal on /audit/* is the audit log's own entry, not a consent event.
    mark = await api.mark()
    _, staff = tokens.headers("staff", purpose="support")
    assert_problem(await client.get("/audit/entries", headers=staff), 403)
    assert await api.events(after=mark) == []


async def test_held_consent_records_are_kept_and_anonymize_is_answered(
    api, client, tokens, settings
) -> None:
    subject, _, _, _ = await _seed_subject(api, client, tokens)
    resource_id = str(uuid.uuid4())
    anonymize = anonymize_command("project", resource_id)
    await publish_command(settings, erase_command(subject, held=["consent"]), anonymize)

    async def answers() -> list[dict]:
        erased = await api.events(event_type="consent.SubjectErased", subject_id=subject)
        anonymized = await api.events(
            event_type="consent.ResourceAnonymized", causation_id=anonymize.event_id
        )
        return erased + anonymized

    erased, answer = await eventually(answers, until=lambda found: len(found) == 2, timeout=30)
    assert erased["data"]["categories_held"] == ["consent"]
    assert erased["data"]["records_deleted"] == {"usage": 2}
    _, retention = tokens.headers("service", subject="retention")
    footprint = (
        await client.get(f"/internal/subjects/{subject}/footprint", headers=retention)
    ).json()
    assert footprint["categories"]["usage"] == {"records": 0, "readable_personal_fields": 0}
    # The held consent decisions stay (proof of consent); their evidence went with the key.
    assert footprint["categories"]["consent"]["records"] == 2
    assert footprint["key_erased"] is True
    assert answer["data"]["resource_type"] == "project"
    assert answer["data"]["resource_id"] == resource_id
    assert answer["data"]["records_anonymized"] == {}

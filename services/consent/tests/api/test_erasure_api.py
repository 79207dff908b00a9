"""API tests: the erasure contract (EraseSubject over Kafka, export, footprint), no plaintext
personal values at rest in the event store, relay publishing, readiness, AsyncAPI."""

from __future__ import annotations

import json
import uuid

import bson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from mmgen.consent.service_layer.consents import owner_of
from mmgen.events.envelope import Envelope, Resource
from mmgen.events.kafka_testing import read_all, wait_until

MARKER_AGENT = "Browser/1.0 marker-"
EVENT_PAGE = "/secret-page-"


async def _seed_subject(api, client, tokens) -> tuple[str, dict[str, str], str]:
    """A subject with consents and accepted analytics events carrying recognisable values."""
    await api.publish_policy("v1")
    marker = uuid.uuid4().hex
    subject, me = tokens.headers("client")
    me = {**me, "User-Agent": MARKER_AGENT + marker}
    for purpose in ("cookies.analytics", "marketing.email"):
        response = await client.put(
            f"/consents/me/{purpose}", headers=me, json={"granted": True, "policy_version": "v1"}
        )
        assert response.status_code == 200
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
    return subject, me, marker


async def test_raw_event_documents_hold_no_plaintext_personal_values(api, client, tokens) -> None:
    subject, _, marker = await _seed_subject(api, client, tokens)
    docs = await api.events()
    assert len(docs) >= 5
    raw = b"".join(bson.encode(doc) for doc in docs)
    assert marker.encode() not in raw
    assert MARKER_AGENT.encode() not in raw
    assert EVENT_PAGE.encode() not in raw
    # ...while the export, for the subject's own access request, decrypts them.
    _, retention = tokens.headers("service", subject="retention")
    export = (await client.get(f"/internal/subjects/{subject}/export", headers=retention)).json()
    assert {e["content"]["page"] for e in export["tracking_events"]} == {EVENT_PAGE + marker}
    assert {h["evidence"]["user_agent"] for h in export["consent_history"]} == {
        MARKER_AGENT + marker
    }
    assert sorted(c["purpose"] for c in export["consents"]) == [
        "cookies.analytics",
        "marketing.email",
    ]
    # The export itself is audited (ids and counts only).
    (exported,) = await api.events(event_type="consent.SubjectExported")
    assert exported["action"] == "read"
    assert exported["actor"] == {"id": "retention", "role": "service"}
    assert exported["data"] == {"consent_records": 2, "tracking_events": 2}


async def test_internal_routes_need_retention_service_token(api, client, tokens) -> None:
    subject = str(uuid.uuid4())
    for path in (f"/internal/subjects/{subject}/export", f"/internal/subjects/{subject}/footprint"):
        assert (await client.get(path)).status_code == 401
        _, person = tokens.headers("compliance")
        assert (await client.get(path, headers=person)).status_code == 403
        _, other = tokens.headers("service", subject="projects")
        assert (await client.get(path, headers=other)).status_code == 403
    denials = await api.events(event_type="consent.AccessDenied")
    assert len(denials) == 6
    assert {d["subject_id"] for d in denials} == {subject}


async def _send_command(kafka_bootstrap: str, topic: str, command: Envelope) -> RecordMetadata:
    """Publish `command`; where it landed (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        return await producer.send_and_wait(topic, command.to_wire(), key=command.kafka_key())
    finally:
        await producer.stop()


async def _wait_until_consumed(
    kafka_bootstrap: str, group_id: str, sent: RecordMetadata, what: str
) -> None:
    """Until `group_id` has committed an offset past `sent`: the consumer commits only after
    the record's effect (or its skip as a duplicate) is done, so whatever it was going to do
    about the record has happened. (A consumer that never subscribes never joins the group.)"""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(sent.topic, sent.partition)

        async def past_it() -> bool:
            return ((await consumer.committed(partition)) or 0) > sent.offset

        await wait_until(past_it, timeout_s=30, what=what)
    finally:
        await consumer.stop()


def erase_command(subject: str, held: list[str] | None = None) -> Envelope:
    request_id = str(uuid.uuid4())
    return Envelope(
        event_type="retention.EraseSubject",
        schema_version=1,
        producer="retention",
        stream_id=f"privacy-request:{request_id}",
        stream_version=2,
        subject_id=subject,
        action="erase",
        resource=Resource(type="subject", id=subject),
        data={"request_id": request_id, "subject_id": subject, "categories_held": held or []},
    )


async def test_erase_subject_brings_footprint_to_zero(
    api, client, tokens, app, kafka_bootstrap, topic_prefix
) -> None:
    subject, me, marker = await _seed_subject(api, client, tokens)
    _, retention = tokens.headers("service", subject="retention")
    footprint_url = f"/internal/subjects/{subject}/footprint"
    before = (await client.get(footprint_url, headers=retention)).json()
    assert before["categories"]["consent"]["records"] > 0
    assert before["categories"]["usage"]["records"] == 2
    assert before["total_readable_personal_fields"] > 0

    command = erase_command(subject)
    await _send_command(kafka_bootstrap, f"{topic_prefix}retention.commands", command)

    async def footprint_is_zero() -> bool:
        body = (await client.get(footprint_url, headers=retention)).json()
        return body["total_readable_personal_fields"] == 0 and body["total_records"] == 0

    await wait_until(footprint_is_zero, timeout_s=30, what="footprint to reach zero")
    (erased,) = await api.events(event_type="consent.SubjectErased")
    assert erased["subject_id"] == subject
    assert erased["action"] == "erase"
    assert erased["causation_id"] == command.event_id
    assert erased["data"] == {
        "request_id": command.data["request_id"],
        "keys_shredded": 1,
        "consent_records_deleted": 2,
        "tracking_events_deleted": 2,
        "categories_held": [],
    }
    export = (await client.get(f"/internal/subjects/{subject}/export", headers=retention)).json()
    assert export["erased"] is True
    assert export["consents"] == [] and export["tracking_events"] == []
    assert all(h["evidence"] == {"erased": True} for h in export["consent_history"])
    assert marker not in json.dumps(export)

    # A redelivered command is not applied twice; nothing new is recorded for the subject.
    resent = await _send_command(kafka_bootstrap, f"{topic_prefix}retention.commands", command)
    await _wait_until_consumed(
        kafka_bootstrap, app.state.consent.settings.consumer_group, resent, "the re-sent command"
    )
    gone = await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    assert gone.status_code == 410
    dropped = await client.post("/tracking/events", headers=me, json={"name": "page_view"})
    assert dropped.json()["reason"] == "subject_erased"
    assert len(await api.events(event_type="consent.SubjectErased")) == 1


async def test_relay_publishes_consent_events(
    api, client, tokens, kafka_bootstrap, topic_prefix
) -> None:
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    records = await read_all(kafka_bootstrap, f"{topic_prefix}consent.events", expect=2)
    envelopes = sorted((Envelope.from_wire(r.value) for r in records), key=lambda e: e.producer_seq)
    assert [e.event_type for e in envelopes][:2] == [
        "consent.PolicyPublished",
        "consent.ConsentGranted",
    ]
    granted = envelopes[1]
    assert granted.subject_id == subject and granted.producer == "consent"
    # Its evidence is sealed under the subject's key: the one erasure shreds.
    assert granted.pii is not None and granted.pii.owner == owner_of(subject)
    keys = {Envelope.from_wire(r.value).event_id: r.key for r in records}
    assert keys[granted.event_id] == subject.encode()


@pytest.mark.with_audit
async def test_readiness_asyncapi_and_audit_trail(api, client, tokens) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok"
    assert checks["audit-projector"] == "no open gaps"
    asyncapi = (await client.get("/asyncapi.json")).json()
    text = json.dumps(asyncapi)
    for event_type in (
        "consent.ConsentGranted",
        "consent.ConsentWithdrawn",
        "consent.SubjectErased",
    ):
        assert event_type in text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/consents/me/{purpose}" in paths and "/tracking/events" in paths
    assert "/audit/entries" in paths

    # A consent decision reaches the audit log (through the relay and the projector): ids only.
    await api.publish_policy("v1")
    subject, me = tokens.headers("client")
    await client.put(
        "/consents/me/marketing.email", headers=me, json={"granted": True, "policy_version": "v1"}
    )
    _, compliance = tokens.headers("compliance")
    headers = {**compliance, "X-Purpose": "legal_compliance"}

    async def audited() -> list[dict[str, object]]:
        response = await client.get(f"/audit/entries?subject_id={subject}", headers=headers)
        return response.json()["items"] if response.status_code == 200 else []

    await wait_until(audited, timeout_s=30, what="the consent to reach the audit log")
    (entry,) = await audited()
    assert entry["event_type"] == "consent.ConsentGranted"
    assert entry["action"] == "consent"
    assert entry["actor_id"] == subject
    assert entry["categories"] == ["consent", "contact"]


async def test_held_consent_records_are_kept_and_anonymize_is_answered(
    api, client, tokens, kafka_bootstrap, topic_prefix
) -> None:
    subject, _, _ = await _seed_subject(api, client, tokens)
    topic = f"{topic_prefix}retention.commands"
    await _send_command(kafka_bootstrap, topic, erase_command(subject, held=["consent"]))
    resource_id = str(uuid.uuid4())
    anonymize = Envelope(
        event_type="retention.AnonymizeResource",
        schema_version=1,
        producer="retention",
        stream_id=f"retention-run:{resource_id}",
        stream_version=1,
        action="erase",
        resource=Resource(type="project", id=resource_id),
        data={"request_id": "r-1", "resource": {"type": "project", "id": resource_id}},
    )
    await _send_command(kafka_bootstrap, topic, anonymize)

    async def answered() -> bool:
        answers = await api.events(
            event_type={"$in": ["consent.ResourceAnonymized", "consent.SubjectErased"]}
        )
        return len(answers) == 2

    await wait_until(answered, timeout_s=30, what="both commands to be answered")
    (erased,) = await api.events(event_type="consent.SubjectErased")
    assert erased["data"]["categories_held"] == ["consent"]
    assert erased["data"]["consent_records_deleted"] == 0
    assert erased["data"]["tracking_events_deleted"] == 2
    _, retention = tokens.headers("service", subject="retention")
    footprint = (
        await client.get(f"/internal/subjects/{subject}/footprint", headers=retention)
    ).json()
    assert footprint["categories"]["usage"] == {"records": 0, "readable_personal_fields": 0}
    # The held consent decisions stay (proof of consent); their evidence went with the key.
    assert footprint["categories"]["consent"]["records"] == 2
    (answer,) = await api.events(event_type="consent.ResourceAnonymized")
    assert answer["data"]["resource_id"] == resource_id
    assert answer["data"]["records_anonymized"] == 0

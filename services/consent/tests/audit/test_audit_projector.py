"""The projector against the real broker and database: pattern subscription, dedup, DLQ,
continuity per producer, gap repair through the producers' relays, `audit.log` publishing."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from prometheus_client import CollectorRegistry

from mmgen.auditlog.verify import verify_log
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.republish import RepublishListener
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.platform.health import run_checks


async def send(
    bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None
) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, v, key=(keys[i] if keys else None))
            for i, v in enumerate(values)
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 15.0
) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def entries_of(audit: Any) -> list[dict[str, Any]]:
    head = await audit.store.head()
    return [json.loads(d["e"]) async for d in audit.store.iter_documents(0, head.size)]


async def test_every_events_topic_once_new_topics_too_nothing_else(
    audit: Any,
    audit_settings: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    eventually: Any,
    envelope: Any,
    group_offsets: Any,
) -> None:
    topics = Topics(topic_prefix)
    identity = [envelope("identity", s) for s in range(1, 13)]
    await ensure_topics(kafka_bootstrap, [topics.events("identity")], partitions=4)
    # Out of order across partitions, and every event delivered twice.
    wire = [e.to_wire() for e in identity]
    sent = await send(
        kafka_bootstrap,
        topics.events("identity"),
        wire + wire[::-1],
        [e.kafka_key() for e in identity + identity[::-1]],
    )
    # Not for the projector: a DLQ topic, another prefix's events topic.
    others = await send(
        kafka_bootstrap, dlq_topic(topics.events("identity")), [envelope("identity", 99).to_wire()]
    )
    others += await send(
        kafka_bootstrap,
        f"other{uuid.uuid4().hex[:6]}.identity.events",
        [envelope("identity", 98).to_wire()],
    )
    await eventually(lambda: _size(audit, 12))
    # A service that did not exist when the projector started (nor when the two topics above
    # did): picked up by the pattern.
    newcomer = [envelope("newsvc", s) for s in (1, 2, 3)]
    await ensure_topics(kafka_bootstrap, [topics.events("newsvc")], partitions=4)
    sent += await send(kafka_bootstrap, topics.events("newsvc"), [e.to_wire() for e in newcomer])
    # Every record sent to the events topics has been logged or skipped: only now can the
    # test say that nothing else was logged.
    group = audit_settings.audit_consumer_group
    await group_offsets.wait_past(group, group_offsets.ends_of(sent))
    entries = await entries_of(audit)
    assert sorted(e["event_id"] for e in entries) == sorted(e.event_id for e in identity + newcomer)
    assert _metric(audit, "mmgen_audit_duplicates_total") == len(identity)  # the second copies
    untouched = [TopicPartition(r.topic, r.partition) for r in others]
    assert set((await group_offsets.committed(group, untouched)).values()) == {0}
    assert verify_log(entries).valid
    # Built from the envelope header only: never its data.
    assert "never in the audit log" not in json.dumps(entries)
    by_id = {e.event_id: e for e in identity}
    sample = next(e for e in entries if e["event_id"] in by_id)
    source = by_id[sample["event_id"]]
    assert (sample["subject_id"], sample["actor_id"], sample["action"], sample["resource"]) == (
        source.subject_id, source.actor.id, "update", {"type": "thing", "id": source.resource.id}
    )  # fmt: skip
    states = {d["_id"]: d for d in await audit.store.producer_states()}
    assert states["identity"]["contiguous"] == 12 and states["newsvc"]["contiguous"] == 3
    # Published to audit.log in seq order, the stored canonical text as value.
    published = await read_topic(kafka_bootstrap, topics.audit_log, 15)
    seqs = sorted(int(dict(r.headers)["seq"]) for r in published)
    assert seqs == list(range(15))
    # Within each partition (a subject's entries share one) the offsets follow seq order.
    by_partition: dict[int, list[Any]] = {}
    for record in published:
        by_partition.setdefault(record.partition, []).append(record)
    for records in by_partition.values():
        in_offset_order = [
            int(dict(r.headers)["seq"]) for r in sorted(records, key=lambda r: r.offset)
        ]
        assert in_offset_order == sorted(in_offset_order)
    assert {json.loads(r.value)["hash"] for r in published} == {e["hash"] for e in entries}
    # A signed head covers the log soon (every 10 entries or 1 s).
    latest = await eventually(lambda: _latest(audit, 15))
    assert latest.tree_size == 15


async def _size(audit: Any, n: int) -> bool:
    return (await audit.store.head()).size >= n


async def _latest(audit: Any, n: int) -> Any:
    record = await audit.store.latest_checkpoint()
    return record if record is not None and record.tree_size >= n else None


async def test_undecodable_and_unnumbered_messages_are_dead_lettered(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    topic = Topics(topic_prefix).events("projects")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=4)
    good = envelope("projects", 1)
    unnumbered = envelope("projects", 2).model_copy(update={"producer_seq": None})
    await send(kafka_bootstrap, topic, [b"not json", unnumbered.to_wire(), good.to_wire()])
    await eventually(lambda: _size(audit, 1))
    dead = await read_topic(kafka_bootstrap, dlq_topic(topic), 2)
    assert sorted(r.value for r in dead) == sorted([b"not json", unnumbered.to_wire()])
    assert all(dict(r.headers)["dlq_stage"] == b"audit" for r in dead)
    assert [e["event_id"] for e in await entries_of(audit)] == [good.event_id]


async def test_an_envelope_claiming_another_producer_is_refused_and_opens_no_hole(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    """Only identity writes to `identity.events`: an envelope claiming identity on consent's
    topic is not taken, is counted and parked with its reason, and identity's own numbering
    goes on as if it had never been sent (no hole, no republish request)."""
    topics = Topics(topic_prefix)
    consent_topic, identity_topic = topics.events("consent"), topics.events("identity")
    await ensure_topics(
        kafka_bootstrap, [consent_topic, dlq_topic(consent_topic), identity_topic], partitions=4
    )
    forged = envelope("identity", 2)
    far_ahead = envelope("identity", 1000)
    await send(kafka_bootstrap, consent_topic, [forged.to_wire(), far_ahead.to_wire()])
    own = envelope("consent", 1)
    await send(kafka_bootstrap, consent_topic, [own.to_wire()])
    genuine = [envelope("identity", 1), envelope("identity", 2)]
    await send(kafka_bootstrap, identity_topic, [e.to_wire() for e in genuine])

    await eventually(lambda: _size(audit, 3))
    dead = await read_topic(kafka_bootstrap, dlq_topic(consent_topic), 2)
    assert sorted(r.value for r in dead) == sorted([forged.to_wire(), far_ahead.to_wire()])
    reasons = [dict(r.headers)["dlq_error_message"].decode() for r in dead]
    assert all("producer 'identity'" in reason for reason in reasons), reasons
    assert _metric(audit, "mmgen_audit_refused_total", topic_producer="consent") == 2
    logged = await entries_of(audit)
    assert sorted(e["event_id"] for e in logged) == sorted(
        [own.event_id, *(e.event_id for e in genuine)]
    )
    assert forged.event_id not in {e["event_id"] for e in logged}
    states = {doc["_id"]: doc for doc in await audit.store.producer_states()}
    assert states["identity"]["contiguous"] == 2
    assert not states["identity"].get("missing")
    assert _metric(audit, "mmgen_audit_gap_missing_events", producer="identity") == 0


async def test_a_hole_is_republished_by_the_producer_and_filled_exactly_once(
    audit: Any,
    mongo_db: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    eventually: Any,
    envelope: Any,
) -> None:
    topics = Topics(topic_prefix)
    topic = topics.events("identity")
    await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    store = MongoEventStore(mongo_db, "identity")
    await store.ensure_indexes()
    relay = Relay(
        store,
        mongo_db,
        kafka_bootstrap,
        topic,
        settings=RelaySettings(lease_ttl_s=5),
        registry=CollectorRegistry(),
    )
    listener = RepublishListener(
        relay,
        kafka_bootstrap,
        topic_prefix=topic_prefix,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await relay.start()
    await listener.start()
    try:
        assert await relay.acquire()

        async def append(n: int) -> None:
            for _ in range(n):
                event = envelope("identity", 1).model_copy(update={"producer_seq": None})
                await store.append(event.stream_id, 0, [event])

        await append(10)
        assert await relay.publish_next() == 10
        # Events 11..15 are committed but never reach the broker (lost by it, or skipped).
        await append(5)
        assert await relay.leases.advance(relay.status.owner, relay.status.epoch, 15, 5)
        relay.status.checkpoint = 15
        await append(5)
        assert await relay.publish_next() == 5
        await eventually(lambda: _size(audit, 15))
        state = await eventually(lambda: _gap(audit))
        assert (state["contiguous"], state["missing"]) == (10, 5)
        # Operators see the open gap in /readyz's detail (still ready) and in the metrics.
        [ready] = await run_checks(audit.readiness_checks, 2.0)
        assert ready.ok and ready.detail.startswith("identity: 5 missing after 10"), ready.detail
        assert _metric(audit, "mmgen_audit_gap_missing_events", producer="identity") == 5
        # After the repair delay, the request reaches the relay, which republishes 11..15.
        await eventually(lambda: _size(audit, 20), timeout_s=30)
        entries = await entries_of(audit)
        stored = await store.read_range(1, 21)
        assert sorted(e["event_id"] for e in entries) == sorted(e.event_id for e in stored)
        assert sorted(e["producer_seq"] for e in entries) == list(range(1, 21))
        assert listener.served and listener.served[0].published == 5
        final = {d["_id"]: d for d in await audit.store.producer_states()}["identity"]
        assert final["contiguous"] == 20 and final["missing"] == 0
        assert final["repair_requests"] >= 1 and final["repairs"] == 1
        assert verify_log(entries).valid
        [ready] = await run_checks(audit.readiness_checks, 2.0)
        assert ready.ok and ready.detail == "no open gaps", ready.detail
        assert _metric(audit, "mmgen_audit_gap_missing_events", producer="identity") == 0
        assert _metric(audit, "mmgen_audit_repair_requests_total", producer="identity") >= 1
        assert _metric(audit, "mmgen_audit_gaps_repaired_total", producer="identity") == 1
    finally:
        await listener.stop()
        await relay.close()


def _metric(audit: Any, name: str, **labels: str) -> float:
    """A sample of the component's own Prometheus registry (0 when never set)."""
    return audit.metrics.registry.get_sample_value(name, labels) or 0.0


async def _gap(audit: Any) -> Any:
    for doc in await audit.store.producer_states():
        if doc["_id"] == "identity" and doc.get("missing"):
            return doc
    return None


async def test_a_hole_wider_than_one_request_does_not_stop_another_producers_repair(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    """Producer A misses more than MAX_RANGE events, producer B one: both are asked, in chunks."""
    from datetime import UTC, datetime, timedelta

    from mmgen.events.republish import MAX_RANGE, RepublishRequest, republish_topic

    topics = Topics(topic_prefix)
    wide, small = f"wide{uuid.uuid4().hex[:6]}", f"small{uuid.uuid4().hex[:6]}"
    sent = [
        envelope(wide, 1),
        envelope(wide, MAX_RANGE + 10),
        envelope(small, 1),
        envelope(small, 3),
    ]
    for producer in (wide, small):
        await ensure_topics(kafka_bootstrap, [topics.events(producer)], partitions=4)
        await send(
            kafka_bootstrap,
            topics.events(producer),
            [e.to_wire() for e in sent if e.producer == producer],
        )

    async def both_open() -> bool:
        states = {d["_id"]: d for d in await audit.store.producer_states()}
        return all(states.get(p, {}).get("missing") for p in (wide, small))

    await eventually(both_open)
    requests = await audit.projector.request_repairs(now=datetime.now(UTC) + timedelta(hours=1))
    asked = {(r.producer, r.from_seq, r.to_seq) for r in requests}
    assert (small, 2, 2) in asked
    assert (wide, 2, MAX_RANGE + 1) in asked
    assert (wide, MAX_RANGE + 2, MAX_RANGE + 9) in asked
    on_topic = await read_topic(kafka_bootstrap, republish_topic(topic_prefix), len(requests))
    seen = {
        (r.producer, r.from_seq, r.to_seq)
        for r in (RepublishRequest.from_wire(m.value) for m in on_topic)
    }
    assert asked <= seen


async def test_events_lost_after_the_last_one_received_are_asked_for_from_the_announced_head(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    """A producer whose last events vanished and which then went quiet: its head says so."""
    from datetime import UTC, datetime, timedelta

    from mmgen.events.heads import HeadAnnouncement, heads_topic

    topics = Topics(topic_prefix)
    quiet = f"quiet{uuid.uuid4().hex[:6]}"
    await ensure_topics(kafka_bootstrap, [topics.events(quiet)], partitions=4)
    await send(
        kafka_bootstrap, topics.events(quiet), [envelope(quiet, s).to_wire() for s in (1, 2, 3)]
    )

    async def state() -> dict[str, Any]:
        return {d["_id"]: d for d in await audit.store.producer_states()}.get(quiet, {})

    await eventually(lambda: _contiguous_is(state, 3))
    assert await audit.projector.request_repairs(now=datetime.now(UTC) + timedelta(hours=1)) == []

    # Events 4 and 5 were published, acked, then lost with the broker; the relay announces 5.
    await send(kafka_bootstrap, heads_topic(topic_prefix), [HeadAnnouncement(quiet, 5).to_wire()])
    await eventually(lambda: _announced_is(state, 5))
    status = await audit.status()
    [mine] = [p for p in status["producers"] if p["producer"] == quiet]
    assert mine["missing"] == 2
    now = datetime.now(UTC)
    assert await audit.projector.request_repairs(now=now) == []  # the delay starts now
    asked = await audit.projector.request_repairs(now=now + timedelta(hours=1))
    assert [(r.producer, r.from_seq, r.to_seq) for r in asked] == [(quiet, 4, 5)]


async def _contiguous_is(state: Any, n: int) -> bool:
    return (await state()).get("contiguous") == n


async def _announced_is(state: Any, n: int) -> bool:
    return (await state()).get("announced") == n


async def test_a_hole_whose_events_wait_unread_on_the_broker_is_not_asked_for(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    """A projector behind its topics sees holes that are only events it has not read yet.
    Asking the producer for them would put copies behind the originals (under load, a request
    every delay for an ever longer tail kept it behind for good): it asks only once it has
    read what the broker held."""
    from datetime import UTC, datetime, timedelta

    topic = Topics(topic_prefix).events(producer := f"behind{uuid.uuid4().hex[:6]}")
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await send(kafka_bootstrap, topic, [envelope(producer, s).to_wire() for s in (1, 3)])

    async def state() -> dict[str, Any]:
        return {d["_id"]: d for d in await audit.store.producer_states()}.get(producer, {})

    async def hole_open() -> bool:
        return (await state()).get("missing") == 1

    await eventually(hole_open)
    consumer = audit.projector._consumer
    mine = [tp for tp in consumer.assignment() if tp.topic == topic]
    assert mine
    consumer.pause(*mine)  # the projector falls behind: event 2 arrives and waits unread
    try:
        await send(kafka_bootstrap, topic, [envelope(producer, 2).to_wire()])
        later = datetime.now(UTC) + timedelta(hours=1)
        asked = await audit.projector.request_repairs(now=later)
        assert [r for r in asked if r.producer == producer] == []
    finally:
        consumer.resume(*mine)
    await eventually(lambda: _contiguous_is(state, 3))  # read at last, the hole closes


async def test_an_append_the_database_never_answers_is_given_up_and_the_batch_logged_once(
    audit: Any, kafka_bootstrap: str, topic_prefix: str, eventually: Any, envelope: Any
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(kafka_bootstrap, [topics.events("identity")], partitions=4)
    store, append = audit.store, audit.store.append_plan
    hung: list[int] = []

    async def never_answered_once(plan: Any) -> Any:
        if not hung:
            hung.append(1)
            await asyncio.Event().wait()  # the request sent, no answer ever comes
        return await append(plan)

    audit.projector.append_timeout_s = 0.5
    store.append_plan = never_answered_once
    events = [envelope("identity", s) for s in range(1, 13)]
    await send(
        kafka_bootstrap,
        topics.events("identity"),
        [e.to_wire() for e in events],
        [e.kafka_key() for e in events],
    )
    await eventually(lambda: _size(audit, 12))
    assert hung  # the first append hung and was given up
    entries = await entries_of(audit)
    assert sorted(e["event_id"] for e in entries) == sorted(e.event_id for e in events)
    assert verify_log(entries).valid

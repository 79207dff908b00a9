"""Consumer runtime against the real local broker and database: exactly-once effects from
at-least-once delivery, bounded retries, dead letters that keep the partition flowing."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import UpdateOne

from mmgen.events.consumer import (
    ConsumerError,
    EventConsumer,
    HandlerContext,
    RetryPolicy,
    already_processed,
    dlq_error,
)
from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.events.topics import Topics, dlq_topic, ensure_topics

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
FAST_RETRY = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


class Poisoned(Exception):
    """What the test handler raises for events marked poison."""


async def projection_handler(event: Envelope, ctx: HandlerContext) -> None:
    """A read model: counts applications per event (a second application would show 2)."""
    await ctx.db["things"].update_one(
        {"_id": event.event_id},
        {"$inc": {"applied": 1}, "$set": {"stream_id": event.stream_id}},
        upsert=True,
        session=ctx.session,
    )
    if event.data.get("poison"):
        raise Poisoned(f"cannot handle {event.event_id}")
    if event.data.get("flaky") and ctx.attempt < 3:
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")


async def projection_batch_handler(batch: list[tuple[Envelope, HandlerContext]]) -> None:
    """`projection_handler`'s writes for a whole batch, as one bulk write."""
    ctx = batch[0][1]
    await ctx.db["things"].bulk_write(
        [
            UpdateOne(
                {"_id": event.event_id},
                {"$inc": {"applied": 1}, "$set": {"stream_id": event.stream_id}},
                upsert=True,
            )
            for event, _ in batch
        ],
        session=ctx.session,
    )
    for event, ctx in batch:
        if event.data.get("poison"):
            raise Poisoned(f"cannot handle {event.event_id}")
        if event.data.get("flaky") and ctx.attempt < 3:
            raise RuntimeError(f"transient failure on attempt {ctx.attempt}")


#: How a test subscribes: one message at a time, in batches, in batches to a batch handler.
MODES = {
    "per-message": {"batch": False},
    "batch": {"batch": True},
    "batch-handler": {"batch": True, "batch_handler": projection_batch_handler},
}


def counter(registry: CollectorRegistry, name: str, consumer: str, topic: str) -> float:
    value = registry.get_sample_value(
        f"mmgen_events_consumer_{name}_total", {"consumer": consumer, "topic": topic}
    )
    return value or 0.0


async def publish(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run_consumer(
    bootstrap: str,
    db: Any,
    registry: CollectorRegistry,
    group: str,
    *topics: str,
    **subscribe: Any,
) -> KafkaBroker:
    broker = KafkaBroker(bootstrap, logger=None)
    consumer: EventConsumer[Envelope] = EventConsumer(
        broker, db, retry=FAST_RETRY, registry=registry
    )
    consumer.subscribe(*topics, group_id=group, **FAST_GROUP, **subscribe)
    await broker.start()
    return broker


@pytest.mark.parametrize("mode", list(MODES))
async def test_replay_changes_nothing_and_poison_goes_to_dlq(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any, mode: str
) -> None:
    topic = Topics(topic_prefix).events("svc")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=3)
    key = b"one-subject"  # everything on one partition: the poison sits between good events
    good = [make_envelope(i + 1, data={"n": i}) for i in range(20)]
    poison = make_envelope(100, data={"poison": True})
    flaky = make_envelope(101, data={"flaky": True})
    values = [(key, e.to_wire()) for e in good[:10]]
    values += [(key, b"{not an envelope"), (key, poison.to_wire()), (key, flaky.to_wire())]
    values += [(key, e.to_wire()) for e in good[10:]]
    await publish(kafka_bootstrap, topic, values)

    registry = CollectorRegistry()
    name = f"projection-{uuid.uuid4().hex[:8]}"
    broker = await run_consumer(
        kafka_bootstrap,
        mongo_db,
        registry,
        f"{name}-g1",
        topic,
        handler=projection_handler,
        name=name,
        **MODES[mode],
    )
    try:
        await wait_until(
            lambda: counter(registry, "processed", name, topic) >= len(good) + 1,
            what="all good events processed",
        )
        await wait_until(lambda: counter(registry, "dead_lettered", name, topic) >= 2)
    finally:
        await broker.stop()

    things = {d["_id"]: d async for d in mongo_db["things"].find({})}
    expected = {e.event_id for e in [*good, flaky]}
    assert set(things) == expected  # the poison's write rolled back with its transaction
    assert all(doc["applied"] == 1 for doc in things.values())  # flaky's failed tries too
    assert counter(registry, "retried", name, topic) == 2 + 2  # flaky twice, poison twice
    assert await already_processed(mongo_db, name, flaky.event_id)
    assert not await already_processed(mongo_db, name, poison.event_id)

    dead = await read_all(kafka_bootstrap, dlq_topic(topic), expect=2)
    assert len(dead) == 2
    by_value = {r.value: dlq_error(r.headers) for r in dead}
    assert by_value[b"{not an envelope"]["stage"] == "decode"
    assert "EnvelopeInvalidError" in (by_value[b"{not an envelope"]["type"] or "")
    err = by_value[poison.to_wire()]
    assert err["stage"] == "handler"
    assert err["attempts"] == "3"
    assert err["type"] is not None and err["type"].endswith("Poisoned")
    assert poison.event_id in (err["message"] or "")
    assert err["original_topic"] == topic
    assert all(r.key == key for r in dead)

    # Replay the whole topic from offset 0 (a new group) into the same idempotent consumer.
    replay_registry = CollectorRegistry()
    broker = await run_consumer(
        kafka_bootstrap,
        mongo_db,
        replay_registry,
        f"{name}-g2",
        topic,
        handler=projection_handler,
        name=name,
        **MODES[mode],
    )
    try:
        await wait_until(
            lambda: counter(replay_registry, "duplicates", name, topic) >= len(good) + 1,
            what="replay seen as duplicates",
        )
        await wait_until(lambda: counter(replay_registry, "dead_lettered", name, topic) >= 2)
    finally:
        await broker.stop()
    assert counter(replay_registry, "processed", name, topic) == 0
    after = {d["_id"]: d async for d in mongo_db["things"].find({})}
    assert after == things


@pytest.mark.parametrize("batch", [False, True], ids=["per-message", "batch"])
async def test_pattern_subscription_reads_every_events_topic_not_dlqs(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    batch: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mmgen.events.consumer")
    topics = Topics(topic_prefix)
    names = [topics.events("alpha"), topics.events("beta")]
    await ensure_topics(
        kafka_bootstrap, [*names, dlq_topic(names[0]), dlq_topic(names[1])], partitions=2
    )
    events = {name: [make_envelope(i + 1, producer="p") for i in range(5)] for name in names}
    for name, envelopes in events.items():
        await publish(kafka_bootstrap, name, [(e.kafka_key(), e.to_wire()) for e in envelopes])
    decoy = make_envelope(1)
    await publish(kafka_bootstrap, dlq_topic(names[0]), [(b"k", decoy.to_wire())])

    registry = CollectorRegistry()
    name = f"audit-{uuid.uuid4().hex[:8]}"
    broker = await run_consumer(
        kafka_bootstrap,
        mongo_db,
        registry,
        name,
        handler=projection_handler,
        pattern=topics.events_pattern(),
        batch=batch,
    )
    try:
        await wait_until(
            lambda: all(counter(registry, "processed", name, t) >= 5 for t in names),
            what="both topics consumed through the pattern",
        )
    finally:
        await broker.stop()
    stored = {d["_id"]: d["applied"] async for d in mongo_db["things"].find({})}
    assert set(stored) == {e.event_id for envs in events.values() for e in envs}
    assert set(stored.values()) == {1}
    assert decoy.event_id not in stored
    assert all(counter(registry, "retried", name, t) == 0 for t in names)
    assert "one by one" not in caplog.text  # batches committed whole, no fallback


@pytest.mark.parametrize("batch", [False, True], ids=["per-message", "batch"])
async def test_stream_version_continuity_skips_old_and_refuses_gaps(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any, batch: bool
) -> None:
    topic = Topics(topic_prefix).events("streams")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
    stream = f"s-{uuid.uuid4().hex[:8]}"
    v = {n: make_envelope(n, stream_id=stream, stream_version=n) for n in (1, 2, 3, 5)}
    stale = make_envelope(9, stream_id=stream, stream_version=2)  # another id, an old version
    order = [v[1], v[2], stale, v[5], v[3]]
    await publish(kafka_bootstrap, topic, [(b"k", e.to_wire()) for e in order])

    registry = CollectorRegistry()
    name = f"folder-{uuid.uuid4().hex[:8]}"
    broker = await run_consumer(
        kafka_bootstrap,
        mongo_db,
        registry,
        name,
        topic,
        handler=projection_handler,
        check_stream_versions=True,
        batch=batch,
    )
    try:
        await wait_until(lambda: counter(registry, "processed", name, topic) >= 3)
        await wait_until(lambda: counter(registry, "dead_lettered", name, topic) >= 1)
    finally:
        await broker.stop()
    applied = {d["_id"] async for d in mongo_db["things"].find({})}
    assert applied == {v[1].event_id, v[2].event_id, v[3].event_id}
    assert counter(registry, "duplicates", name, topic) == 1  # the stale version 2
    dead = await read_all(kafka_bootstrap, dlq_topic(topic), expect=1)
    assert [json.loads(r.value)["event_id"] for r in dead] == [v[5].event_id]
    assert "StreamVersionGapError" in (dlq_error(dead[0].headers)["type"] or "")


def test_guarantee_settings_cannot_be_overridden(mongo_db: Any) -> None:
    consumer: EventConsumer[Envelope] = EventConsumer(
        KafkaBroker("127.0.0.1:9"), mongo_db, registry=CollectorRegistry()
    )
    with pytest.raises(ConsumerError, match="ack_policy"):
        consumer.subscribe("t.events", handler=projection_handler, group_id="g", ack_policy="x")
    with pytest.raises(ConsumerError, match="auto_offset_reset"):
        consumer.subscribe(
            "t.events", handler=projection_handler, group_id="g", auto_offset_reset="latest"
        )
    with pytest.raises(ConsumerError, match="either topics or a pattern"):
        consumer.subscribe(handler=projection_handler, group_id="g")


async def test_pattern_subscription_picks_up_a_topic_created_later(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    topics = Topics(topic_prefix)
    first, later = topics.events("early"), topics.events("late")
    await ensure_topics(kafka_bootstrap, [first, dlq_topic(first)], partitions=1)
    registry = CollectorRegistry()
    name = f"audit-{uuid.uuid4().hex[:8]}"
    # A short metadata age makes the client see new topics matching the pattern quickly.
    broker = KafkaBroker(kafka_bootstrap, logger=None, metadata_max_age_ms=500)
    consumer: EventConsumer[Envelope] = EventConsumer(
        broker, mongo_db, retry=FAST_RETRY, registry=registry
    )
    consumer.subscribe(
        handler=projection_handler, pattern=topics.events_pattern(), group_id=name, **FAST_GROUP
    )
    await broker.start()
    try:
        e1 = make_envelope(1)
        await publish(kafka_bootstrap, first, [(e1.kafka_key(), e1.to_wire())])
        await wait_until(lambda: counter(registry, "processed", name, first) == 1)
        await ensure_topics(kafka_bootstrap, [later, dlq_topic(later)], partitions=1)
        e2 = make_envelope(1)
        await publish(kafka_bootstrap, later, [(e2.kafka_key(), e2.to_wire())])
        await wait_until(
            lambda: counter(registry, "processed", name, later) == 1,
            what="a topic created after the start consumed through the pattern",
        )
    finally:
        await broker.stop()


async def test_a_transient_error_is_retried_past_the_attempt_limit_never_dead_lettered(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    """ConcurrencyError five times (FAST_RETRY allows 3 attempts), then success: once, no DLQ."""
    from mmgen.events.errors import ConcurrencyError, EventDataInvalidError

    topic = Topics(topic_prefix).events("svc")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
    conflicted = make_envelope(1, data={"conflict": True})
    invalid = make_envelope(2, data={"invalid": True})
    after = make_envelope(3, data={})
    failures: dict[str, int] = {}

    async def handler(event: Envelope, ctx: HandlerContext) -> None:
        await projection_handler(event, ctx)
        if event.data.get("conflict") and failures.get(event.event_id, 0) < 5:
            failures[event.event_id] = failures.get(event.event_id, 0) + 1
            raise ConcurrencyError(event.stream_id, 0, 1)
        if event.data.get("invalid"):
            raise EventDataInvalidError("data does not match its model")

    await publish(
        kafka_bootstrap, topic, [(b"k", e.to_wire()) for e in (conflicted, invalid, after)]
    )
    registry = CollectorRegistry()
    name = f"transient-{uuid.uuid4().hex[:8]}"
    broker = await run_consumer(
        kafka_bootstrap, mongo_db, registry, f"{name}-g", topic, handler=handler, name=name
    )
    try:
        await wait_until(
            lambda: counter(registry, "processed", name, topic) >= 2, what="both good processed"
        )
        await wait_until(lambda: counter(registry, "dead_lettered", name, topic) >= 1)
    finally:
        await broker.stop()
    assert failures[conflicted.event_id] == 5
    things = {d["_id"]: d["applied"] async for d in mongo_db["things"].find({})}
    assert things == {conflicted.event_id: 1, after.event_id: 1}
    assert counter(registry, "retried", name, topic) == 5  # the invalid one is not retried
    [dead] = await read_all(kafka_bootstrap, dlq_topic(topic), expect=1)
    assert dead.value == invalid.to_wire()
    assert dlq_error(dead.headers)["attempts"] == "1"
    stalled = registry.get_sample_value(
        "mmgen_events_consumer_stalled_attempts", {"consumer": name, "topic": topic}
    )
    assert stalled == 0


@pytest.mark.parametrize("batch", [False, True], ids=["per-message", "batch"])
async def test_types_a_subscription_does_not_accept_are_acknowledged_unread(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any, batch: bool
) -> None:
    """Reading another service's topic for one event type: the other types cost no
    transaction and leave no marker; a message without the header is handled as usual."""
    topic = Topics(topic_prefix).events("svc")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
    wanted = [make_envelope(i + 1, data={"n": i}).model_copy(update={"event_type": "svc.Wanted"})
              for i in range(3)]  # fmt: skip
    others = [make_envelope(10 + i, data={"n": i}) for i in range(5)]
    bare = make_envelope(20).model_copy(update={"event_type": "svc.Other"})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in [others[0], wanted[0], *others[1:], wanted[1], wanted[2]]:
            headers = [("event_type", envelope.event_type.encode())]
            await producer.send_and_wait(topic, envelope.to_wire(), key=b"k", headers=headers)
        await producer.send_and_wait(topic, bare.to_wire(), key=b"k")  # no header
    finally:
        await producer.stop()

    registry = CollectorRegistry()
    name = f"picky-{uuid.uuid4().hex[:8]}"
    broker = await run_consumer(
        kafka_bootstrap,
        mongo_db,
        registry,
        f"{name}-g",
        topic,
        handler=projection_handler,
        name=name,
        batch=batch,
        accepts=lambda event_type: event_type == "svc.Wanted",
    )
    try:
        await wait_until(lambda: counter(registry, "processed", name, topic) >= 4)
        await wait_until(lambda: counter(registry, "skipped", name, topic) >= 5)
    finally:
        await broker.stop()
    applied = {d["_id"] async for d in mongo_db["things"].find({})}
    assert applied == {e.event_id for e in [*wanted, bare]}
    for envelope in others:
        assert not await already_processed(mongo_db, name, envelope.event_id)
    assert counter(registry, "skipped", name, topic) == 5


def test_a_batch_handler_needs_batches_without_version_checks(mongo_db: Any) -> None:
    consumer: EventConsumer[Envelope] = EventConsumer(KafkaBroker("127.0.0.1:9"), mongo_db)
    for kwargs in ({"batch": False}, {"batch": True, "check_stream_versions": True}):
        with pytest.raises(ConsumerError, match="batch_handler"):
            consumer.subscribe(
                "t", handler=projection_handler, batch_handler=projection_batch_handler,
                group_id="g", **kwargs,
            )  # fmt: skip

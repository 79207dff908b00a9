"""Relay against the real local broker (Kafka protocol) and database (lease, checkpoint)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import (
    RELAY_COLLECTION,
    CachedKeyPartitioner,
    Relay,
    RelayFencedError,
    RelayMessageTooLargeError,
    RelaySettings,
)
from mmgen.events.store import InMemoryEventStore
from mmgen.events.topics import Topics, ensure_topics
from mmgen.events.tracing import header_value

FAST = RelaySettings(window=50, idle_wait_s=0.2, hole_retry_s=0.05, lease_ttl_s=2.0)


class HidingStore(InMemoryEventStore):
    """An in-memory store that can hide sequence numbers, to make a hole on purpose."""

    def __init__(self, producer: str) -> None:
        super().__init__(producer)
        self.hidden: set[int] = set()
        self.reads = 0

    async def read_range(self, start_seq: int, end_seq: int) -> list[Envelope]:
        self.reads += 1
        events = await super().read_range(start_seq, end_seq)
        return [e for e in events if e.producer_seq not in self.hidden]


async def append_many(
    store: InMemoryEventStore, make_envelope: Any, count: int, **kw: Any
) -> list[Envelope]:
    out: list[Envelope] = []
    for _ in range(count):
        e = make_envelope(producer=store.producer, **kw)
        out.extend(await store.append(e.stream_id, 0, [e]))
    return out


def relay_for(store: Any, db: Any, bootstrap: str, topic: str, **kw: Any) -> Relay:
    return Relay(
        store,
        db,
        bootstrap,
        topic,
        settings=kw.pop("settings", FAST),
        registry=CollectorRegistry(),
        **kw,
    )


@pytest.fixture
def producer_name() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


async def test_publishes_in_order_with_key_headers_and_checkpoint(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = InMemoryEventStore(producer_name)
    subject = str(uuid.uuid4())
    events = await append_many(store, make_envelope, 60, subject_id=subject)
    events += await append_many(store, make_envelope, 5)  # no subject: keyed by stream

    relay = relay_for(store, mongo_db, kafka_bootstrap, topic)
    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 50  # one bounded window
        assert await relay.publish_next() == 15
        assert await relay.publish_next() == 0
    finally:
        await relay.close()
    state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name})
    assert state["checkpoint"] == 65

    records = await read_all(kafka_bootstrap, topic, expect=65)
    assert [json.loads(r.value)["producer_seq"] for r in records] == list(range(1, 66))
    for record, event in zip(records, events, strict=True):
        assert Envelope.from_wire(record.value) == event
        assert record.key == (event.subject_id or event.stream_id).encode()
        assert header_value(record.headers, "event_type") == event.event_type
        assert header_value(record.headers, "schema_version") == "1"
        assert header_value(record.headers, "event_id") == event.event_id

    # A new relay (a restart) resumes from the persisted checkpoint: nothing twice.
    await append_many(store, make_envelope, 3)
    again = relay_for(store, mongo_db, kafka_bootstrap, topic)
    task = asyncio.create_task(again.run())
    try:
        await wait_until(lambda: again.status.checkpoint == 68, what="restart catches up")
    finally:
        await again.stop()
        await task
    records = await read_all(kafka_bootstrap, topic, expect=68)
    assert [json.loads(r.value)["producer_seq"] for r in records] == list(range(1, 69))
    released = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name})
    assert released["owner"] is None  # a graceful stop hands the lease over at once


async def test_stops_at_a_hole_and_resumes_when_it_fills(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = HidingStore(producer_name)
    await append_many(store, make_envelope, 10)
    store.hidden = {4}
    short_lease = RelaySettings(window=50, idle_wait_s=0.2, hole_retry_s=0.05, lease_ttl_s=0.6)
    relay = relay_for(store, mongo_db, kafka_bootstrap, topic, settings=short_lease)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.status.hole_at == 4, what="hole noticed")
        reads = store.reads
        # Retry rounds spanning more than the lease: it must neither jump the hole nor lose
        # the lease while it waits.
        await wait_until(lambda: store.reads >= reads + 20, what="retry rounds at the hole")
        assert relay.status.checkpoint == 3
        rival = relay_for(store, mongo_db, kafka_bootstrap, topic, owner="rival")
        assert not await rival.acquire()
        store.hidden = set()
        await wait_until(lambda: relay.status.checkpoint == 10, what="hole filled, caught up")
        assert relay.status.hole_at is None
    finally:
        await relay.stop()
        await task
    records = await read_all(kafka_bootstrap, topic, expect=10)
    assert [json.loads(r.value)["producer_seq"] for r in records] == list(range(1, 11))


async def test_a_stale_relay_is_fenced_out_by_the_epoch(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = InMemoryEventStore(producer_name)
    await append_many(store, make_envelope, 5)
    old = relay_for(store, mongo_db, kafka_bootstrap, topic, owner="old")
    new = relay_for(store, mongo_db, kafka_bootstrap, topic, owner="new")
    await old.start()
    await new.start()
    try:
        assert await old.acquire()
        assert old.status.epoch == 1
        assert not await new.acquire()  # the lease is held
        assert await old.publish_next() == 5

        # The old relay stalls past its lease (GC pause, partition): the new one takes over.
        await mongo_db[RELAY_COLLECTION].update_one(
            {"_id": producer_name},
            {"$set": {"lease_until": datetime.now(UTC) - timedelta(seconds=1)}},
        )
        assert await new.acquire()
        assert (new.status.epoch, new.status.checkpoint) == (2, 5)
        await append_many(store, make_envelope, 5)
        with pytest.raises(RelayFencedError):
            await old.publish_next()  # it may have sent, but cannot move the checkpoint
        assert not old.status.holds_lease
        state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name})
        assert (state["owner"], state["epoch"], state["checkpoint"]) == ("new", 2, 5)
        assert await new.publish_next() == 5
    finally:
        await old.close()
        await new.close()
    state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name})
    assert state["checkpoint"] == 10


async def test_republish_sends_a_range_again_and_reports_missing_numbers(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = HidingStore(producer_name)
    await append_many(store, make_envelope, 8)
    store.hidden = {5}
    relay = relay_for(store, mongo_db, kafka_bootstrap, topic)
    result = await relay.republish(3, 7)
    assert (result.published, result.missing) == (4, [5])
    records = await read_all(kafka_bootstrap, topic, expect=4)
    assert [json.loads(r.value)["producer_seq"] for r in records] == [3, 4, 6, 7]
    assert await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name}) is None


def test_cached_partitioner_maps_keys_like_kafka_default() -> None:
    cached, default = CachedKeyPartitioner(max_keys=8), DefaultPartitioner()
    partitions = list(range(6))
    keys = [uuid.uuid4().bytes for _ in range(50)] + [b"", b"a", b"subject-1"] * 3
    for key in keys:
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)
    assert cached(None, partitions, [2]) == 2  # keyless: any available partition


async def test_large_events_go_alone_and_oversized_ones_stop_the_relay(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    store = InMemoryEventStore(producer_name)
    await append_many(store, make_envelope, 1, data={"blob": "a" * 600_000})  # > batch size
    await append_many(store, make_envelope, 2)
    relay = relay_for(store, mongo_db, kafka_bootstrap, topic)
    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 3
        # Appends refuse events over 1 MiB now; one stored before that check still stops here.
        with monkeypatch.context() as legacy:
            legacy.setattr("mmgen.events.store.check_auditable", lambda event: None)
            await append_many(store, make_envelope, 1, data={"blob": "b" * 1_100_000})
        await append_many(store, make_envelope, 1)
        with pytest.raises(RelayMessageTooLargeError):
            await relay.publish_next()  # it stops there: never skipped, never checkpointed
        assert relay.status.checkpoint == 3
    finally:
        await relay.close()
    state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer_name})
    assert state["checkpoint"] == 3
    records = await read_all(kafka_bootstrap, topic, expect=3)
    assert [json.loads(r.value)["producer_seq"] for r in records] == [1, 2, 3]
    assert len(records[0].value) > 600_000


async def test_change_stream_wakes_the_relay_for_appends_of_another_process(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    producer_name: str,
) -> None:
    topic = Topics(topic_prefix).events(producer_name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    relay_store = MongoEventStore(mongo_db, producer_name)
    await relay_store.ensure_indexes()
    writer_store = MongoEventStore(mongo_db, producer_name)  # "another process": no shared signal

    async def no_polling(after_seq: int, timeout: float) -> int:  # noqa: ASYNC109
        await asyncio.sleep(timeout)
        return after_seq

    relay = relay_for(
        relay_store,
        mongo_db,
        kafka_bootstrap,
        topic,
        settings=RelaySettings(idle_wait_s=60.0, lease_ttl_s=300.0),
        wait_for_append=no_polling,
        change_stream=relay_store.events,
    )
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.status.holds_lease, what="lease taken")
        await wait_until(lambda: relay._wake is not None and relay._wake.open, what="stream open")
        for _ in range(3):
            event = make_envelope(producer=producer_name)
            await writer_store.append(event.stream_id, 0, [event])
            seq = await writer_store.last_seq()
            # Only the change stream can wake it before the 60 s idle wait ends.
            await wait_until(
                lambda s=seq: relay.status.checkpoint == s,
                timeout_s=10,
                what="woken by the change stream",
            )
    finally:
        await relay.stop()
        await task

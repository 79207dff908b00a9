"""A publisher that takes over from one killed after sending a window but before moving the
cursor does not put those entries on `audit.log` a second time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.publisher import CURSOR, AuditLogPublisher
from mmgen.consent.audit.store import MongoAuditStore
from mmgen.events.topics import ensure_topics


async def every_seq_on(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """The `seq` header of every message on the topic, from the start of each partition."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seqs: list[int] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                seqs.extend(int(dict(r.headers)["seq"]) for r in batch)
        return seqs
    finally:
        await consumer.stop()


async def test_a_successor_skips_what_its_predecessor_sent_past_the_cursor(
    store: MongoAuditStore,
    item: Callable[..., dict[str, Any]],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    await store.append([item(producer_seq=s) for s in range(1, 41)])
    topic = f"{topic_prefix}audit.log"
    await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    metrics = AuditMetrics(CollectorRegistry())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        first = AuditLogPublisher(store, producer, topic, metrics=metrics, window=40)
        # The predecessor sent entries 0..29 and died having saved the cursor at 10 only.
        await first._send(await store.window(0, 30))
        await store.advance_cursor(CURSOR, 10)

        successor = AuditLogPublisher(store, producer, topic, metrics=metrics, window=40)
        assert await successor.skip_published(kafka_bootstrap) == 20
        while await successor.publish_next():
            pass
    finally:
        await producer.stop()

    seqs = await every_seq_on(kafka_bootstrap, topic, 4)
    assert sorted(set(seqs)) == list(range(40)), "an entry never reached audit.log"
    assert [s for s, n in Counter(seqs).items() if n > 1] == [], "entries sent twice"
    assert await store.cursor(CURSOR) == 40

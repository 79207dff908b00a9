"""A broker that restarts empty comes back with fewer partitions and acks writes sent with the
old metadata into partitions it never lists — lost. The publisher must notice and send again,
so everything it sent after the restart is on `audit.log` where consumers can read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.publisher import AuditLogPublisher, BrokerLostWritesError
from mmgen.consent.audit.store import MongoAuditStore
from mmgen.events.topics import ensure_topics
from mmgen.localstack.components import start_broker
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import ManagedProcess
from mmgen.localstack.pytest_plugin import Infra, retry_on_port_clash

PARTITIONS = 6


@pytest.fixture
def broker(infra: Infra, tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    """A broker of this test's own (it is restarted), in a list so the test can replace it."""
    if infra.backend != "local":
        pytest.skip("restarts a local broker of its own: the local backend only")
    log = tmp_path / "broker.log"
    running = [retry_on_port_clash(lambda: start_broker("127.0.0.1", free_port(), log))]
    yield running
    running[-1].stop()


async def listed_seqs(bootstrap: str, topic: str) -> list[int]:
    """The `seq` of every message in the partitions the broker lists for `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for d in described for p in d["partitions"]]
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


async def test_writes_acked_into_partitions_the_restarted_broker_lacks_are_sent_again(
    store: MongoAuditStore,
    item: Callable[..., dict[str, Any]],
    broker: list[ManagedProcess],
    topic_prefix: str,
) -> None:
    await store.append([item(producer_seq=s) for s in range(1, 61)])
    bootstrap = broker[-1].address
    topic = f"{topic_prefix}audit.log"
    await ensure_topics(bootstrap, [topic], partitions=PARTITIONS)
    metrics = AuditMetrics(CollectorRegistry())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", metadata_max_age_ms=60_000)
    await producer.start()
    try:
        publisher = AuditLogPublisher(store, producer, topic, metrics=metrics, window=20)
        assert await publisher.publish_next() == 20
        old = broker[-1]
        old.stop()
        broker.append(start_broker(old.host, old.port, old.log_path))
        refused = failed = 0
        while publisher.next_seq < 60:
            try:
                await publisher.publish_next()
            except BrokerLostWritesError:
                refused += 1
            except KafkaError:  # the broker settling after its restart: the tailer retries
                failed += 1
            assert refused + failed < 20, "the publisher cannot get past the restart"
    finally:
        await producer.stop()

    # Sixty entries, twenty on the broker that is gone: the forty sent since are all readable.
    assert sorted(set(await listed_seqs(bootstrap, topic))) == list(range(20, 60))
    assert refused >= 1, "no write went to a partition the restarted broker lacks"
    assert metrics.publish_lost_acks._value.get() == refused

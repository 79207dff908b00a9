"""Retention's reader of `audit.log` against the session's real broker and database: a backlog
spread over partitions is staged a batch at a time and applied once per entry, in `seq` order,
through redeliveries, a batch that fails halfway and a reader stopped and started again."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.client_session import AsyncClientSession

from mmgen.events.kafka_testing import wait_until
from mmgen.retention.adapters.audit_log import AuditLogReader, MongoAuditInbox
from mmgen.retention.domain.contract import AuditRecord

from .feed_kit import Applied, running

PARTITIONS = 4
BATCH = 200
CONSUMER = "retention-audit-log"


def entry(seq: int, subject: str) -> bytes:
    """An audit entry as consent publishes it (canonical JSON; the reader takes the members
    it needs)."""
    return json.dumps(
        {
            "seq": seq,
            "event_id": f"ev-{seq}",
            "producer": "consent",
            "event_type": "consent.TrackingEventRecorded",
            "action": "create",
            "subject_id": subject,
            "actor_id": subject,
            "actor_role": "creator",
            "purpose": "analytics",
            "categories": ["usage"],
            "occurred_at": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        }
    ).encode()


async def publish(bootstrap: str, topic: str, seqs: Sequence[int]) -> None:
    """Entries keyed by subject as consent keys them: one subject's in one partition, so the
    log's order is spread over every partition."""
    subjects = [str(uuid.uuid4()) for _ in range(13)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for seq in seqs:
            subject = subjects[seq % len(subjects)]
            futures.append(
                await producer.send(
                    topic,
                    entry(seq, subject),
                    key=subject.encode(),
                    headers=[("seq", str(seq).encode())],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class CountingInbox(MongoAuditInbox):
    """The inbox, counting its staging calls; `fail_once_after` makes the first staging of
    more than one entry write that many of them, then fail (the consumer's transaction rolls
    the part back and the batch is redone one entry at a time)."""

    def __init__(self, db: Any, *, fail_once_after: int | None = None) -> None:
        super().__init__(db)
        self.calls: list[int] = []
        self.fail_once_after = fail_once_after

    async def stage(
        self, records: Sequence[AuditRecord], session: AsyncClientSession | None = None
    ) -> None:
        self.calls.append(len(records))
        cut = self.fail_once_after
        if cut is not None and len(records) > 1:
            self.fail_once_after = None
            await super().stage(records[:cut], session)
            raise RuntimeError("the process died in the middle of a batch")
        await super().stage(records, session)


def reader(
    kafka_bootstrap: str,
    db: Any,
    topic: str,
    inbox: MongoAuditInbox,
    apply: Applied,
    registry: CollectorRegistry,
    group: str,
) -> AuditLogReader:
    return AuditLogReader(
        db=db,
        inbox=inbox,
        apply=apply,
        bootstrap=kafka_bootstrap,
        topic=topic,
        group_id=group,
        partitions=PARTITIONS,
        registry=registry,
        batch_size=BATCH,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        idle_wait_s=0.2,
    )


def counted(registry: CollectorRegistry, name: str, topic: str) -> float:
    value = registry.get_sample_value(
        f"mmgen_events_consumer_{name}_total", {"consumer": CONSUMER, "topic": topic}
    )
    return value or 0.0


async def test_a_backlog_is_staged_in_batches_and_applied_once_in_seq_order(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}audit.log"
    total = 1500
    await publish(kafka_bootstrap, topic, range(total))
    await publish(kafka_bootstrap, topic, range(300, 400))  # a publisher's crash: sent again
    inbox, applied, registry = CountingInbox(mongo_db), Applied(), CollectorRegistry()
    await inbox.ensure_indexes()
    feed = reader(kafka_bootstrap, mongo_db, topic, inbox, applied, registry, f"g-{topic}")
    async with running(feed):
        await wait_until(
            lambda: feed.tailer.status.checkpoint == total - 1,
            timeout_s=120,
            what="the backlog applied",
        )
        await wait_until(
            lambda: counted(registry, "duplicates", topic) >= 100,
            timeout_s=60,
            what="the copies read",
        )
    assert applied.seqs == list(range(total))  # each once, in the log's order
    assert counted(registry, "processed", topic) == total
    assert counted(registry, "duplicates", topic) == 100
    # staged a batch at a time, not an entry at a time
    assert len(inbox.calls) <= 4 * total // BATCH, inbox.calls
    assert await mongo_db["audit_inbox"].count_documents({"seq": {"$lt": total - BATCH}}) == 0


async def test_a_batch_failing_halfway_loses_nothing_and_stages_nothing_twice(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}audit.log"
    total = 600
    await publish(kafka_bootstrap, topic, range(total))
    inbox, applied, registry = (
        CountingInbox(mongo_db, fail_once_after=7),
        Applied(),
        CollectorRegistry(),
    )
    await inbox.ensure_indexes()
    feed = reader(kafka_bootstrap, mongo_db, topic, inbox, applied, registry, f"g-{topic}")
    async with running(feed):
        await wait_until(
            lambda: feed.tailer.status.checkpoint == total - 1,
            timeout_s=120,
            what="every entry applied",
        )
    assert inbox.fail_once_after is None  # the failure happened
    assert 1 in inbox.calls  # the failed batch was redone entry by entry
    assert applied.seqs == list(range(total))
    assert counted(registry, "processed", topic) == total
    assert counted(registry, "dead_lettered", topic) == 0


async def test_a_reader_stopped_midway_goes_on_where_it_was(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}audit.log"
    total = 1200
    await publish(kafka_bootstrap, topic, range(total))
    group = f"g-{topic}"
    applied = Applied()
    first = reader(
        kafka_bootstrap,
        mongo_db,
        topic,
        MongoAuditInbox(mongo_db),
        applied,
        CollectorRegistry(),
        group,
    )
    await first.inbox.ensure_indexes()
    async with running(first):
        await wait_until(
            lambda: first.tailer.status.checkpoint >= 0, timeout_s=120, what="a first run"
        )
    stopped_at = first.tailer.status.checkpoint
    registry = CollectorRegistry()
    second = reader(
        kafka_bootstrap, mongo_db, topic, MongoAuditInbox(mongo_db), applied, registry, group
    )
    async with running(second):
        await wait_until(
            lambda: second.tailer.status.checkpoint == total - 1,
            timeout_s=120,
            what="the rest applied",
        )
    assert stopped_at < total - 1  # stopped with a backlog left (one window after the first)
    assert applied.seqs == list(range(total))  # nothing lost, nothing applied twice

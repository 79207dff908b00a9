"""Retention's reader of `audit.log`: every entry once, applied in `seq` order.

Consent publishes one message per audit entry, keyed by subject so one subject's entries stay
in one partition; across partitions they arrive in any order. The activity projection and
the `audit_seq` of each acknowledgement need the log's own order, so reading is two steps:

1. the kernel's consumer runtime (`EventConsumer`, decoding audit-entry JSON rather than
   envelopes; idempotent on `seq`) stages each entry in `audit_inbox` within its transaction —
   a redelivered entry is skipped, a malformed one dead-lettered to `audit.log.dlq`;
2. a checkpointed `Tailer` over the staged entries hands each contiguous run, in `seq` order,
   to the feed (`AuditFeed.on_entries`), and stops at a number not yet staged (an entry still
   on its way in another partition) rather than skipping it. Entries below the checkpoint are
   deleted as it moves on, so the inbox holds only what waits to be applied.

A number that stays missing (the broker lost it) is asked for again from consent
(`audit_repair.AuditHoleRepair`, on `audit.republish`) once the tailer has waited at it for
`hole_repair_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.consumer import ConsumerMetrics, EventConsumer, HandlerContext, RetryPolicy
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity
from mmgen.events.relay import PRODUCER_RECOVERY_CONFIG
from mmgen.events.republish import RepublishRequest, republish_topic, send_republish_request
from mmgen.events.tailer import MongoCheckpoint, Tailer, TailerMetrics
from mmgen.events.topics import dlq_topic, ensure_topics
from mmgen.platform import ReadinessCheck
from mmgen.retention.adapters.audit_repair import AuditHoleRepair, RepairMetrics
from mmgen.retention.domain.contract import AuditRecord

log = logging.getLogger(__name__)

INBOX = "audit_inbox"
INBOX_STATE = "audit_inbox_state"
FEED_CHECKPOINTS = "audit_feed_state"
FEED_NAME = "audit-feed"
MAX_WINDOW = 1000
PARTITION_FETCH_BYTES = 64 * 1024
"""Most bytes fetched from one partition at a time (about 100-150 entries). The feed applies
only the contiguous run of seqs, which come from every partition: with the client's default
(1 MiB) a backlog arrived partition after partition, and the run waited for the last one."""


@dataclass(frozen=True)
class AuditMessage:
    """One `audit.log` message. `event_id` is the consumer runtime's idempotency key: the
    entry's `seq`, which names it in the log (the audited event's id names another thing)."""

    record: AuditRecord

    @property
    def event_id(self) -> str:
        return f"audit-seq:{self.record.seq}"


def decode_audit_entry(body: bytes) -> AuditMessage:
    """An audit entry's canonical JSON (as consent publishes it); anything else is poison."""
    return AuditMessage(AuditRecord.model_validate_json(body))


class MongoAuditInbox:
    """Entries received and not yet applied: `{_id: seq, seq, entry}`, and the highest seq."""

    max_window = MAX_WINDOW

    def __init__(self, db: AsyncDatabase[Any], *, poll_s: float = 0.05) -> None:
        self.entries = db[INBOX]
        self.state = db[INBOX_STATE]
        self.poll_s = poll_s

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("seq", ASCENDING)], name="seq")

    async def stage(
        self, records: Sequence[AuditRecord], session: AsyncClientSession | None = None
    ) -> None:
        """Keep `records` until applied: one bulk write and one update of the highest seq,
        whatever their number (per-entry writes made the feed the pipeline's slowest stage).
        An entry staged before stays as it was (upsert on its seq)."""
        if not records:
            return
        await self.entries.bulk_write(
            [
                UpdateOne(
                    {"_id": r.seq},
                    {"$setOnInsert": {"seq": r.seq, "entry": r.model_dump(mode="json")}},
                    upsert=True,
                )
                for r in records
            ],
            ordered=False,
            session=session,
        )
        await self.state.update_one(
            {"_id": "received"},
            {"$max": {"seq": max(r.seq for r in records)}},
            upsert=True,
            session=session,
        )

    async def lowest_above(self, seq: int) -> int | None:
        """The lowest seq staged above `seq` (where the entries after a hole resume)."""
        doc = await self.entries.find_one(
            {"seq": {"$gt": seq}}, {"seq": 1}, sort=[("seq", ASCENDING)]
        )
        return int(doc["seq"]) if doc else None

    async def prune(self, before: int) -> int:
        """Forget entries below `before` (applied and checkpointed)."""
        result = await self.entries.delete_many({"seq": {"$lt": before}})
        return result.deleted_count

    # --- as a tail source -----------------------------------------------------------------

    def seq(self, item: AuditRecord) -> int:
        return item.seq

    async def read(self, start: int, end: int) -> Sequence[AuditRecord]:
        docs = (
            await self.entries.find({"seq": {"$gte": start, "$lt": end}})
            .sort("seq", ASCENDING)
            .to_list(end - start)
        )
        return [AuditRecord.model_validate(d["entry"]) for d in docs]

    async def last(self) -> int:
        doc = await self.state.find_one({"_id": "received"})
        return int(doc["seq"]) if doc else -1

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109
        """Polls the highest seq received (the consumer commits in its own transaction, so a
        wake-up sent from its handler would come before the entry is visible)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.last() > after:
                return
            await asyncio.sleep(self.poll_s)


Apply = Callable[[Sequence[AuditRecord]], Awaitable[Any]]


class AuditLogReader:
    """A runtime component: the consumer of `audit.log` and the tailer of its inbox."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[Any],
        inbox: MongoAuditInbox,
        apply: Apply,
        bootstrap: str,
        topic: str,
        group_id: str,
        partitions: int,
        registry: CollectorRegistry,
        consumer_metrics: Callable[[], ConsumerMetrics | None] = lambda: None,
        batch_size: int = 500,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
        idle_wait_s: float = 1.0,
        security: KafkaSecurity = PLAINTEXT,
        partition_fetch_bytes: int = PARTITION_FETCH_BYTES,
        hole_repair_s: float = 10.0,
        republish_to: str = republish_topic(),
    ) -> None:
        self.db = db
        self.security = security
        self.partition_fetch_bytes = partition_fetch_bytes
        self.inbox = inbox
        self.apply = apply
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.partitions = partitions
        self.registry = registry
        self.consumer_metrics = consumer_metrics
        self.batch_size = batch_size
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.tailer: Tailer[AuditRecord] = Tailer(
            FEED_NAME,
            inbox,
            MongoCheckpoint(db[FEED_CHECKPOINTS], FEED_NAME, start=-1),
            self._apply,
            first_seq=0,
            window=batch_size,
            idle_wait_s=idle_wait_s,
            metrics=TailerMetrics(registry, prefix="audit_feed", label="feed"),
        )
        self.republish_to = republish_to
        self.repair = AuditHoleRepair(
            self._send_repair,
            inbox.lowest_above,
            after_s=hole_repair_s,
            metrics=RepairMetrics(registry),
        )
        self._repair_poll_s = min(1.0, hole_repair_s / 4)
        self.broker: KafkaBroker | None = None
        self.consumer: EventConsumer[AuditMessage] | None = None
        self._task: asyncio.Task[None] | None = None
        self._repair_task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def readiness_check(self) -> ReadinessCheck:
        return ReadinessCheck("audit-feed", self._ready)

    async def start(self) -> None:
        # The log's topic is consent's; made here too, with the platform's count, so that a
        # subscriber starting first never auto-creates it with another one (the same for the
        # topic its repair requests go to).
        await ensure_topics(
            self.bootstrap,
            [self.topic, dlq_topic(self.topic), self.republish_to],
            partitions=self.partitions,
            check_partitions=False,
            security=self.security,
        )
        self.broker = KafkaBroker(
            self.bootstrap,
            logger=None,
            client_id="retention-audit",
            acks="all",
            security=self.security.faststream(),
        )
        self.consumer = EventConsumer(
            self.broker,
            self.db,
            decode=decode_audit_entry,
            retry=RetryPolicy(),
            metrics=self.consumer_metrics() or ConsumerMetrics(self.registry),
        )
        self.consumer.subscribe(
            self.topic,
            handler=self._stage,
            batch_handler=self._stage_batch,
            group_id=self.group_id,
            name="retention-audit-log",
            batch=True,
            max_records=self.batch_size,
            max_partition_fetch_bytes=self.partition_fetch_bytes,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await self.broker.start()
        self._task = asyncio.create_task(self.tailer.run(), name="retention-audit-feed")
        self._repair_task = asyncio.create_task(
            self.repair.run(lambda: self.tailer.status.hole_at, self._repair_poll_s),
            name="retention-audit-repair",
        )

    async def stop(self) -> None:
        repair, self._repair_task = self._repair_task, None
        if repair is not None:
            repair.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await repair
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
        await self.tailer.stop()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)
            self._task = None
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None

    async def _send_repair(self, request: RepublishRequest) -> None:
        """Send a republish request (the producer is made on the first: holes are rare)."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=False,
                client_id="retention-audit-repair",
                **PRODUCER_RECOVERY_CONFIG,
                **self.security.client_config(),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        await send_republish_request(self._producer, self.republish_to, request)

    async def _stage(self, message: AuditMessage, ctx: HandlerContext) -> None:
        await self.inbox.stage([message.record], ctx.session)

    async def _stage_batch(self, batch: Sequence[tuple[AuditMessage, HandlerContext]]) -> None:
        await self.inbox.stage([message.record for message, _ in batch], batch[0][1].session)

    async def _apply(self, records: Sequence[AuditRecord]) -> None:
        await self.inbox.prune(records[0].seq)
        await self.apply(records)

    async def _ready(self) -> bool | str:
        if self.broker is None or not await self.broker.ping(timeout=1.0):
            return False
        if self._task is None or self._task.done():
            return False
        status = self.tailer.status
        if status.hole_at is not None:
            repair = self.repair.describe()
            return f"waiting for audit seq {status.hole_at}" + (f" ({repair})" if repair else "")
        if status.last_error is not None:
            return False  # failing rounds: the feed is not being applied
        return f"applied through audit seq {status.checkpoint}"

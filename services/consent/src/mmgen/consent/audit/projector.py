"""Audit projector: every `<prefix>*.events` topic → the hash-chained log, in batches.

Why plain aiokafka rather than the kernel's `EventConsumer`: an audit append is a batch
operation on ONE head (seq, prev_hash, frontier) — entries, nodes, producers and head must be
written in one transaction per batch, in arrival order — while the runtime calls a handler per
event. Its guarantees are kept here the same way: offsets are committed only after the
batch's transaction committed (at-least-once delivery), and idempotency on `event_id` is the
log's own unique index, checked inside that transaction (so a redelivered or republished
event is never appended twice). Undecodable messages go to `<topic>.dlq` with the error in
headers, like the runtime does; nothing stalls a partition.

Pattern subscription: a new service's topic is picked up on the next metadata refresh
(`metadata_max_age_ms`), with no code change. Per-producer continuity is tracked by the store
(`ProducerProgress`); a hole open longer than the repair delay becomes a republish request
(`mmgen.events.republish`), repeated every delay while it stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo.errors import PyMongoError

from mmgen.consent.audit.domain import AuditEntryRejectedError, entry_fields
from mmgen.events.envelope import Envelope
from mmgen.events.errors import EventsError
from mmgen.events.republish import RepublishRequest, send_republish_request
from mmgen.events.topics import dlq_topic

if TYPE_CHECKING:
    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.store import AppendResult, MongoAuditStore

log = logging.getLogger(__name__)


class AuditProjector:
    """Consumes every events topic matching `pattern` and appends to the audit store."""

    def __init__(
        self,
        store: MongoAuditStore,
        bootstrap: str,
        *,
        pattern: str,
        group_id: str,
        producer: AIOKafkaProducer,
        republish_topic: str,
        metrics: AuditMetrics,
        batch_max: int = 1000,
        gap_repair_delay_s: float = 5.0,
        metadata_max_age_ms: int = 3000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        on_append: Callable[[AppendResult], None] | None = None,
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.pattern = pattern
        self.group_id = group_id
        self.producer = producer
        self.republish_topic = republish_topic
        self.metrics = metrics
        self.batch_max = batch_max
        self.gap_repair_delay = timedelta(seconds=gap_repair_delay_s)
        self.metadata_max_age_ms = metadata_max_age_ms
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.on_append = on_append
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._gap_task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.running = False

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=self.metadata_max_age_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        consumer.subscribe(pattern=self.pattern)
        await consumer.start()
        self._consumer = consumer
        self.running = True
        self._task = asyncio.create_task(self._run(), name="audit-projector")
        self._gap_task = asyncio.create_task(self._watch_gaps(), name="audit-gaps")

    async def stop(self) -> None:
        self.running = False
        for task in (self._task, self._gap_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._gap_task = None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    # --- ingest ---------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        backoff = 0.2
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                records = [r for rs in batches.values() for r in rs]
                if not records:
                    continue
                await self.ingest(records)
                await consumer.commit()
                backoff = 0.2
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The batch was not committed: rewind to the committed offsets and retry it.
                self.last_error = repr(exc)
                log.exception("audit projector: batch failed, retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                with contextlib.suppress(Exception):
                    await self._rewind(consumer)

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    async def ingest(self, records: list[Any]) -> AppendResult | None:
        """Decode records and append them in one transaction (dead-letter what cannot be)."""
        items: list[dict[str, Any]] = []
        sources: list[Any] = []
        for record in records:
            try:
                envelope = Envelope.from_wire(record.value)
                if envelope.producer_seq is None:
                    raise EventsError("event has no producer_seq")
                fields = entry_fields(envelope)
            except (EventsError, ValueError, TypeError) as exc:
                await self._dead_letter(record, exc)
                continue
            items.append(fields)
            sources.append(record)
        if not items:
            return None
        result = await self.store.append(items)
        self.record(result)
        for position, reason in result.rejected:
            await self._dead_letter(sources[position], AuditEntryRejectedError(reason))
        return result

    def record(self, result: AppendResult) -> None:
        """Metrics and listeners after a committed append."""
        for entry in result.entries:
            self.metrics.appended.labels(entry.producer).inc()
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)
        self.metrics.tree_size.set(result.head.size)
        for producer, progress in result.progress.items():
            self.metrics.gaps_open.labels(producer).set(progress.missing)
        for producer in result.closed_gaps:
            self.metrics.repairs.labels(producer).inc()
        if self.on_append is not None and result.entries:
            self.on_append(result)

    async def _dead_letter(self, record: Any, exc: BaseException) -> None:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
        headers = list(record.headers or ()) + [
            ("dlq_error_type", f"{type(exc).__module__}.{type(exc).__qualname__}".encode()),
            ("dlq_error_message", text.encode("utf-8", "replace")),
            ("dlq_stage", b"audit"),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer", self.group_id.encode()),
        ]
        await self.producer.send_and_wait(
            dlq_topic(record.topic), record.value, key=record.key, headers=headers
        )
        self.metrics.dead_lettered.inc()
        log.warning(
            "audit projector: %s offset %d dead-lettered: %s", record.topic, record.offset, text
        )

    # --- gap repair -----------------------------------------------------------------------

    async def _watch_gaps(self) -> None:
        period = max(0.1, min(1.0, self.gap_repair_delay.total_seconds() / 2))
        while True:
            await asyncio.sleep(period)
            try:
                await self.request_repairs()
            except asyncio.CancelledError:
                raise
            except (PyMongoError, Exception):
                log.exception("audit projector: gap check failed")

    async def request_repairs(self, now: datetime | None = None) -> list[RepublishRequest]:
        """Ask producers to republish holes open longer than the delay (again every delay)."""
        now = now or datetime.now(UTC)
        sent: list[RepublishRequest] = []
        for doc in await self.store.producer_states():
            since = doc.get("gap_since")
            if since is None or not doc.get("ranges"):
                continue
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
            last = doc.get("last_request_at")
            last = last if last is None or last.tzinfo else last.replace(tzinfo=UTC)
            if now - since < self.gap_repair_delay:
                continue
            if last is not None and now - last < self.gap_repair_delay:
                continue
            below = int(doc.get("contiguous", 0))
            for first, last_held in doc["ranges"]:
                request = RepublishRequest(str(doc["_id"]), below + 1, int(first) - 1)
                await send_republish_request(self.producer, self.republish_topic, request)
                sent.append(request)
                below = int(last_held)
            await self.store.note_repair_request(str(doc["_id"]), now)
            self.metrics.repair_requests.labels(str(doc["_id"])).inc()
            log.warning(
                "audit: asked %s to republish %s",
                doc["_id"],
                [(r.from_seq, r.to_seq) for r in sent],
            )
        return sent

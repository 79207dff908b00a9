"""`audit.log` publisher: every appended entry, in seq order, from the store (outbox cursor).

The log's entries are followed with the checkpointed tailer (mmgen.events.tailer): numbered
from 0, the head's size is the end, and a missing entry stops it (never skipped: a missing
document is a fault `verify` reports). The cursor (`audit_cursors`, next seq to send) moves
only after the broker acked everything below it, so a crash republishes at worst
(at-least-once; consumers dedup on `seq` or `event_id`). A replica that takes the publisher
over (lease) first reads the tail of `audit.log` and skips the entries after the cursor that
its predecessor had sent before dying (`published_after`), so a crash of the leader does not
put an entry on the topic twice. The key is the subject (else the
producer), so one subject's entries stay ordered in one partition, and each message carries
a `seq` header to rebuild the total order. The value is the entry's canonical JSON text, as
stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity
from mmgen.events.tailer import Tailer, TailerMetrics

if TYPE_CHECKING:
    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.store import MongoAuditStore

log = logging.getLogger(__name__)

CURSOR = "audit.log"
MAX_WINDOW = 4_096
"""Largest window read at once (the store reads a window's pages by key)."""


class AuditEntrySource:
    """The audit log's entry rows as a tail source: seq from 0, `head.size` is the end.

    There is no append signal across processes: `wait` sleeps its timeout and the component
    wakes the tailer with `notify()` after each local append.
    """

    max_window = MAX_WINDOW

    def __init__(self, store: MongoAuditStore) -> None:
        self.store = store

    def seq(self, item: dict[str, Any]) -> int:
        return int(item["_id"])

    async def read(self, start: int, end: int) -> Sequence[dict[str, Any]]:
        end = min(end, (await self.store.head()).size)
        if end <= start:
            return []
        return await self.store.window(start, end)

    async def last(self) -> int:
        return (await self.store.head()).size - 1

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109
        await asyncio.sleep(timeout)


class AuditCursor:
    """The publisher's checkpoint kept in its cursor document (`next_seq` = checkpoint + 1),
    so a log published before keeps its position."""

    def __init__(self, store: MongoAuditStore, metrics: AuditMetrics, name: str = CURSOR) -> None:
        self.store = store
        self.metrics = metrics
        self.name = name

    async def load(self) -> int:
        return await self.store.cursor(self.name) - 1

    async def save(self, seq: int) -> bool:
        await self.store.advance_cursor(self.name, seq + 1)
        self.metrics.published_seq.set(seq + 1)
        return True


class AuditLogPublisher:
    """Publishes `[cursor, head.size)` in windows, then waits to be woken (or polls)."""

    def __init__(
        self,
        store: MongoAuditStore,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        metrics: AuditMetrics,
        window: int = 1000,
        idle_wait_s: float = 1.0,
        tailer_metrics: TailerMetrics | None = None,
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.sent_before: set[int] = set()
        """Seqs after the cursor already on the topic (a predecessor's last, unsaved window)."""
        self.tailer: Tailer[dict[str, Any]] = Tailer(
            "consent.audit_log",
            AuditEntrySource(store),
            AuditCursor(store, metrics),
            self._send,
            first_seq=0,
            window=window,
            idle_wait_s=idle_wait_s,
            metrics=tailer_metrics,
        )
        self.window = self.tailer.window

    @property
    def next_seq(self) -> int:
        """The next seq to send (everything below it was acked)."""
        return self.tailer.status.checkpoint + 1

    @property
    def last_error(self) -> str | None:
        return self.tailer.status.last_error

    def notify(self) -> None:
        self.tailer.notify()

    async def publish_next(self) -> int:
        """Send the next window after the cursor; return how many entries went out."""
        return await self.tailer.step()

    async def run(self) -> None:
        """Publish until `stop()` (or cancelled); failures are logged and retried."""
        await self.tailer.run()

    async def stop(self) -> None:
        await self.tailer.stop()

    async def skip_published(
        self, bootstrap: str, timeout_s: float = 30.0, *, security: KafkaSecurity = PLAINTEXT
    ) -> int:
        """Before the first send: note which entries after the cursor are on the topic already.

        Returns how many will be skipped. The cursor moves only after a whole window is acked,
        so what a crashed predecessor sent beyond it is at most one window, and lies in the
        last `window` messages of each partition. `security`: how the service's other Kafka
        clients connect (a SASL listener refuses a client without it).
        """
        start = await self.store.cursor(CURSOR)
        published = await published_seqs(
            bootstrap, self.topic, self.window, timeout_s, security=security
        )
        self.sent_before = {seq for seq in published if seq >= start}
        return len(self.sent_before)

    async def _send(self, docs: Sequence[dict[str, Any]]) -> None:
        """The tailer's sink: one contiguous run of entries, every message acked."""
        sent = await send_entries(
            self.producer,
            self.topic,
            [doc for doc in docs if not self._sent_before(doc["_id"])],
        )
        self.metrics.published.inc(sent)

    def _sent_before(self, seq: int) -> bool:
        """Whether a predecessor put `seq` on the topic already (skipped once, then forgotten)."""
        if seq in self.sent_before:
            self.sent_before.discard(seq)
            return True
        return False


def audit_log_message(doc: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """An entry row as its `audit.log` message: key, value and headers (the one way to build
    it: publishing and republishing must key an entry alike, or it changes partitions)."""
    key = (doc.get("subject_id") or doc.get("producer") or "").encode("utf-8")
    headers = [
        ("seq", str(doc["_id"]).encode()),
        ("event_id", str(doc["event_id"]).encode()),
    ]
    return key, doc["e"].encode("utf-8"), headers


async def send_entries(
    producer: AIOKafkaProducer, topic: str, docs: Sequence[dict[str, Any]]
) -> int:
    """Send entry rows to `audit.log` and wait until every one is acked; returns how many."""
    futures = []
    for doc in docs:
        key, value, headers = audit_log_message(doc)
        futures.append(await producer.send(topic, value, key=key, headers=headers))
    await asyncio.gather(*futures)
    return len(futures)


async def published_seqs(
    bootstrap: str,
    topic: str,
    tail: int,
    timeout_s: float,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> set[int]:
    """The `seq` headers of the last `tail` messages of every partition of `topic`.

    Partitions are asked for by name (the local broker may leave a topic out of its listing);
    no consumer group, so reading commits nothing. Raises TimeoutError if the end is not
    reached in `timeout_s` (the caller then does not publish: better late than twice).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_config())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic, p["partition"]) for d in described for p in d.get("partitions") or []
    ]
    if not partitions:
        return set()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **security.client_config()
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(firsts[tp], ends[tp] - tail))
        seqs: set[int] = set()
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for record in batch:
                        value = dict(record.headers or ()).get("seq")
                        if value is not None and value.isdigit():
                            seqs.add(int(value))
        return seqs
    finally:
        await consumer.stop()

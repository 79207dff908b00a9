"""`audit.log` publisher: every appended entry, in seq order, from the store (outbox cursor).

The log's entries are followed with the checkpointed tailer (mmgen.events.tailer): numbered
from 0, the head's size is the end, and a missing entry stops it (never skipped: a missing
document is a fault `verify` reports). The cursor (`audit_cursors`, next seq to send) moves
only after the broker acked everything below it, so a crash republishes at worst
(at-least-once; consumers dedup on `seq` or `event_id`). The key is the subject (else the
producer), so one subject's entries stay ordered in one partition, and each message carries
a `seq` header to rebuild the total order. The value is the entry's canonical JSON text, as
stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

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

    async def _send(self, docs: Sequence[dict[str, Any]]) -> None:
        """The tailer's sink: one contiguous run of entries, every message acked."""
        futures = []
        for doc in docs:
            key = (doc.get("subject_id") or doc.get("producer") or "").encode("utf-8")
            headers = [
                ("seq", str(doc["_id"]).encode()),
                ("event_id", str(doc["event_id"]).encode()),
            ]
            futures.append(
                await self.producer.send(
                    self.topic, doc["e"].encode("utf-8"), key=key, headers=headers
                )
            )
        await asyncio.gather(*futures)
        self.metrics.published.inc(len(futures))

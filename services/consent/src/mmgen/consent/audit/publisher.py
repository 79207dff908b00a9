"""`audit.log` publisher: every appended entry, in seq order, from the store (outbox cursor).

The cursor (`audit_cursors`, next seq to send) moves only after the broker acked everything
below it, so a crash republishes at worst (at-least-once; consumers dedup on `seq` or
`event_id`). Messages are sent in seq order; the key is the subject (else the producer), so
one subject's entries stay ordered in one partition, and each message carries a `seq`
header to rebuild the total order. The value is the entry's canonical JSON text, as stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer

if TYPE_CHECKING:
    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.store import MongoAuditStore

log = logging.getLogger(__name__)

CURSOR = "audit.log"


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
    ) -> None:
        self.store = store
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.window = window
        self.idle_wait_s = idle_wait_s
        self._wake = asyncio.Event()
        self.next_seq = 0
        self.last_error: str | None = None

    def notify(self) -> None:
        self._wake.set()

    async def publish_next(self) -> int:
        """Send the next window after the cursor; return how many entries went out."""
        self.next_seq = await self.store.cursor(CURSOR)
        head = await self.store.head()
        end = min(head.size, self.next_seq + self.window)
        if end <= self.next_seq:
            return 0
        docs = await self.store.window(self.next_seq, end)
        futures = []
        expected = self.next_seq
        for doc in docs:
            if doc["_id"] != expected:
                break  # never skip: a missing document is a fault `verify` reports
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
            expected += 1
        if futures:
            await asyncio.gather(*futures)
            await self.store.advance_cursor(CURSOR, expected)
            self.metrics.published.inc(len(futures))
            self.metrics.published_seq.set(expected)
            self.next_seq = expected
        return len(futures)

    async def run(self) -> None:
        while True:
            try:
                sent = await self.publish_next()
                self.last_error = None
                if sent >= self.window:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_wait_s)
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = repr(exc)
                log.exception("audit.log publisher failed; retrying")
                await asyncio.sleep(1.0)

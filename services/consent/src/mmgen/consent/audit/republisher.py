"""Gap repair of `audit.log` itself: its entries published again when a reader asks.

A reader that follows `audit.log` in `seq` order (retention's audit feed) stops at a missing
seq; a message the broker lost never comes on its own. The reader then sends a republish
request naming the reserved producer `AUDIT_LOG_PRODUCER` on `<prefix>audit.republish` (the
topic services' gaps are repaired through), and this server — behind the same
`RepublishListener` services run beside their relays — reads the range from the audit store
and publishes it again, built exactly as the publisher builds it (same key, so the same
partition; same `seq` header). Readers are idempotent on `seq`, so a copy is harmless.

It runs with the log's writers, on the replica that holds the audit lease, with their producer.
One request is served up to `max_entries` entries: a wider hole is asked for again by the
reader from where it still stops.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mmgen.consent.audit.publisher import send_entries
from mmgen.events.relay import RepublishResult
from mmgen.events.republish import AUDIT_LOG_PRODUCER

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.store import MongoAuditStore

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_REQUEST = 1_000
"""Most entries one request publishes again (a bound on the work one message can cause)."""


class AuditLogRepublisher:
    """A `RepublishServer` over the audit store: `audit.log` entries by `seq`, from 0."""

    producer_name = AUDIT_LOG_PRODUCER

    def __init__(
        self,
        store: MongoAuditStore,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        metrics: AuditMetrics,
        max_entries: int = MAX_ENTRIES_PER_REQUEST,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.store = store
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.max_entries = max_entries

    async def last_seq(self) -> int:
        """The highest seq in the log (-1 while it is empty)."""
        return (await self.store.head()).size - 1

    async def republish(self, from_seq: int, to_seq: int) -> RepublishResult:
        """Publish entries `from_seq..to_seq` again, at most `max_entries` of them.

        `missing`: seqs of the range (as served) the store lacks — a fault `verify` reports,
        never invented here.
        """
        if from_seq < 0 or to_seq < from_seq:
            raise ValueError(f"bad range {from_seq}..{to_seq}")
        end = min(to_seq + 1, from_seq + self.max_entries, await self.last_seq() + 1)
        docs = await self.store.window(from_seq, end) if end > from_seq else []
        have = {int(doc["_id"]) for doc in docs}
        missing = [seq for seq in range(from_seq, end) if seq not in have]
        published = await send_entries(self.producer, self.topic, docs)
        self.metrics.republished.inc(published)
        if end <= to_seq:
            log.info(
                "audit.log %d..%d asked; %d..%d served (at most %d per request)",
                from_seq,
                to_seq,
                from_seq,
                end - 1,
                self.max_entries,
            )
        return RepublishResult(published=published, missing=missing)


__all__ = ["MAX_ENTRIES_PER_REQUEST", "AuditLogRepublisher"]

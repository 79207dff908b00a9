"""Every stored event about one subject (its account stream, reads of it, refusals about it).

Exports, footprints and erasure answers need them. On MongoDB an index on `subject_id` makes
it an indexed equality read bounded by the subject, never a scan of the store; the in-memory
version scans the in-memory store (unit tests).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from pymongo import ASCENDING

from mmgen.events.envelope import Envelope
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.store import EventStore
from mmgen.runtime.contract import CountsByCategory, owner_of_subject


class SubjectEvents(Protocol):
    async def of(self, subject_id: str, limit: int | None = None) -> list[Envelope]:
        """The subject's events in store order (the first `limit`)."""
        ...

    async def sealed(self, subject_id: str) -> CountsByCategory:
        """Per category, the events whose personal part is sealed under the subject's key."""
        ...


def sealed_counts(envelopes: list[Envelope], subject_id: str) -> CountsByCategory:
    owner = owner_of_subject(subject_id)
    counts: Counter[str] = Counter()
    for envelope in envelopes:
        if envelope.pii is not None and envelope.pii.owner == owner:
            counts.update(envelope.categories)
    return dict(counts)


class MongoSubjectEvents:
    def __init__(self, store: MongoEventStore) -> None:
        self.events = store.events

    async def ensure_indexes(self) -> None:
        await self.events.create_index(
            [("subject_id", ASCENDING), ("producer_seq", ASCENDING)], name="subject_seq"
        )

    async def of(self, subject_id: str, limit: int | None = None) -> list[Envelope]:
        cursor = self.events.find({"subject_id": subject_id}).sort("producer_seq", ASCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [Envelope.from_document(doc) async for doc in cursor]

    async def sealed(self, subject_id: str) -> CountsByCategory:
        owner = owner_of_subject(subject_id)
        query: dict[str, Any] = {"subject_id": subject_id, "pii.owner": owner}
        found = [Envelope.from_document(doc) async for doc in self.events.find(query)]
        return sealed_counts(found, subject_id)


class InMemorySubjectEvents:
    """Reads an in-memory `EventStore` window by window."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def _all(self, subject_id: str) -> list[Envelope]:
        found: list[Envelope] = []
        last, window = await self.store.last_seq(), self.store.max_read_window
        for start in range(1, last + 1, window):
            batch = await self.store.read_range(start, min(start + window, last + 1))
            found.extend(e for e in batch if e.subject_id == subject_id)
        return found

    async def of(self, subject_id: str, limit: int | None = None) -> list[Envelope]:
        found = await self._all(subject_id)
        return found if limit is None else found[:limit]

    async def sealed(self, subject_id: str) -> CountsByCategory:
        return sealed_counts(await self._all(subject_id), subject_id)

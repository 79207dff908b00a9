"""Every stored event about one subject (its account stream, reads of it, refusals about it).

Exports and footprints need them all; an index on `subject_id` makes it an indexed equality
read bounded by the subject, never a scan of the store.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING

from mmgen.events.envelope import Envelope
from mmgen.events.mongo_store import MongoEventStore


class SubjectEvents:
    def __init__(self, store: MongoEventStore) -> None:
        self.events = store.events

    async def ensure_indexes(self) -> None:
        await self.events.create_index(
            [("subject_id", ASCENDING), ("producer_seq", ASCENDING)], name="subject_seq"
        )

    async def of(self, subject_id: str) -> list[Envelope]:
        cursor = self.events.find({"subject_id": subject_id})
        found = [Envelope.from_document(doc) async for doc in cursor]
        found.sort(key=lambda e: e.producer_seq or 0)
        return found

    async def count_encrypted(self, subject_id: str) -> int:
        """Events whose personal part is sealed under this subject's key."""
        query: dict[str, Any] = {"subject_id": subject_id, "pii.owner": f"subject:{subject_id}"}
        return await self.events.count_documents(query)

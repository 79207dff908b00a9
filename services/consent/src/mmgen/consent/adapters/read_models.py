"""Read models of the consent service on MongoDB: current consents, policies, tracked events.

They are projections of the event store (the source of truth), written right after each
append. Every write is guarded by the stream version it reflects, so replaying or racing
projections never moves a read model backwards. Lookups are by key or by an indexed equality
(bounded, see INFRA.md); none is an open-ended scan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.consent.domain.model import ConsentState
from mmgen.events.envelope import normalize_time

CONSENTS = "consents"
POLICIES = "policies"
TRACKING = "tracking_events"


def _consent_id(subject_id: str, purpose: str) -> str:
    return f"{subject_id}|{purpose}"


class ConsentReadModel:
    """Current decision per (subject, purpose), as `GET /consents/*` shows it."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[CONSENTS]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("subject_id", ASCENDING)], name="subject")

    async def project(
        self,
        subject_id: str,
        states: Sequence[ConsentState],
        stream_version: int,
    ) -> None:
        """Write the folded state of a subject's consents as of `stream_version`."""
        for state in states:
            doc_id = _consent_id(subject_id, state.purpose)
            fields = {
                "subject_id": subject_id,
                "purpose": state.purpose,
                "granted": state.granted,
                "policy_version": state.policy_version,
                "method": state.method,
                "decided_at": state.decided_at,
                "stream_version": stream_version,
            }
            with contextlib.suppress(DuplicateKeyError):  # a newer projection is there
                await self.coll.update_one(
                    {"_id": doc_id, "stream_version": {"$lt": stream_version}},
                    {"$set": fields},
                    upsert=True,
                )

    async def of_subject(self, subject_id: str) -> list[dict[str, Any]]:
        docs = await self.coll.find({"subject_id": subject_id}).to_list(None)
        return sorted(docs, key=lambda d: str(d["purpose"]))

    async def get(self, subject_id: str, purpose: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": _consent_id(subject_id, purpose)})

    async def count(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_id": subject_id})

    async def delete_subject(self, subject_id: str) -> int:
        result = await self.coll.delete_many({"subject_id": subject_id})
        return result.deleted_count


class PolicyReadModel:
    """Published policy versions (public documents, not personal data)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[POLICIES]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("effective_at", DESCENDING)], name="effective_at")

    async def put(self, doc: dict[str, Any]) -> None:
        await self.coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def get(self, version: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": version})

    async def current(self, now: datetime) -> dict[str, Any] | None:
        """The newest version whose effective date has come (versions are few: a bounded read)."""
        docs = await self.coll.find({"effective_at": {"$lte": now}}, {"text": 0}).to_list(None)
        if not docs:
            return None
        return max(docs, key=lambda d: (normalize_time(d["effective_at"]), d["published_at"]))

    async def all(self, limit: int = 200) -> list[dict[str, Any]]:
        docs = await self.coll.find({}, {"text": 0}).to_list(limit)
        return sorted(docs, key=lambda d: normalize_time(d["effective_at"]), reverse=True)


class TrackingReadModel:
    """Accepted analytics events per subject: ids and names only; contents stay encrypted in
    the event store and are decrypted for an export."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[TRACKING]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index(
            [("subject_id", ASCENDING), ("received_at", ASCENDING)], name="subject_time"
        )

    async def add(self, event_id: str, subject_id: str, name: str, received_at: datetime) -> None:
        doc = {"_id": event_id, "subject_id": subject_id, "name": name, "received_at": received_at}
        with contextlib.suppress(DuplicateKeyError):  # added before (a retried request)
            await self.coll.insert_one(doc)

    async def has(self, event_id: str) -> bool:
        return await self.coll.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def trim(self, subject_id: str, keep: int) -> int:
        """Drop the oldest events of a subject beyond `keep` (storage is bounded per subject)."""
        total = await self.coll.count_documents({"subject_id": subject_id})
        if total <= keep:
            return 0
        oldest = (
            await self.coll.find({"subject_id": subject_id}, {"_id": 1})
            .sort([("received_at", ASCENDING), ("_id", ASCENDING)])
            .to_list(total - keep)
        )
        result = await self.coll.delete_many({"_id": {"$in": [d["_id"] for d in oldest]}})
        return result.deleted_count

    async def of_subject(self, subject_id: str, limit: int) -> list[dict[str, Any]]:
        return (
            await self.coll.find({"subject_id": subject_id})
            .sort("received_at", ASCENDING)
            .to_list(limit)
        )

    async def count(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_id": subject_id})

    async def delete_subject(self, subject_id: str) -> int:
        result = await self.coll.delete_many({"subject_id": subject_id})
        return result.deleted_count

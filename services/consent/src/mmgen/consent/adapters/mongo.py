"""The read models on MongoDB (the consent service's own database).

Collections `consents` (`_id` = `<subject>|<purpose>`), `policies` (`_id` = version) and
`tracking_events` (`_id` = event id). Every write is guarded — by the stream version it
reflects, or by the key — so replayed or racing projections never move a row backwards.
Lookups are by key or by an indexed equality (bounded, see INFRA.md); none is an open scan.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.consent.adapters.read_models import Policy, PolicySummary, TrackedEvent
from mmgen.consent.domain.model import ConsentState
from mmgen.events.envelope import normalize_time

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

CONSENTS = "consents"
POLICIES = "policies"
TRACKING = "tracking_events"
READ_MODEL_COLLECTIONS = (CONSENTS, POLICIES, TRACKING)


def _consent_id(subject_id: str, purpose: str) -> str:
    return f"{subject_id}|{purpose}"


def _state(doc: dict[str, Any]) -> ConsentState:
    return ConsentState(
        purpose=doc["purpose"],
        granted=bool(doc["granted"]),
        policy_version=doc.get("policy_version"),
        method=doc["method"],
        decided_at=doc.get("decided_at"),
    )


class MongoConsentReadModel:
    """`ConsentReadModel` on the `consents` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[CONSENTS]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("subject_id", ASCENDING)], name="subject")

    async def put(self, subject_id: str, state: ConsentState, stream_version: int) -> None:
        fields = {
            "subject_id": subject_id,
            "purpose": state.purpose,
            "granted": state.granted,
            "policy_version": state.policy_version,
            "method": state.method,
            "decided_at": state.decided_at,
            "stream_version": stream_version,
        }
        with contextlib.suppress(DuplicateKeyError):  # a newer decision is there
            await self.coll.update_one(
                {
                    "_id": _consent_id(subject_id, state.purpose),
                    "stream_version": {"$lt": stream_version},
                },
                {"$set": fields},
                upsert=True,
            )

    async def of_subject(self, subject_id: str) -> list[ConsentState]:
        docs = await self.coll.find({"subject_id": subject_id}).to_list(None)
        return sorted((_state(d) for d in docs), key=lambda s: s.purpose)

    async def get(self, subject_id: str, purpose: str) -> ConsentState | None:
        doc = await self.coll.find_one({"_id": _consent_id(subject_id, purpose)})
        return None if doc is None else _state(doc)

    async def count(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_id": subject_id})

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int:
        result = await self.coll.delete_many({"subject_id": subject_id}, session=session)
        return result.deleted_count


def _summary(doc: dict[str, Any]) -> PolicySummary:
    return PolicySummary(
        version=doc["version"],
        title=doc["title"],
        effective_at=doc["effective_at"],
        sha256=doc["sha256"],
        published_at=doc["published_at"],
        published_by=doc.get("published_by"),
    )


class MongoPolicyReadModel:
    """`PolicyReadModel` on the `policies` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[POLICIES]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("effective_at", DESCENDING)], name="effective_at")

    async def add(self, policy: Policy) -> None:
        doc = {
            "version": policy.version,
            "title": policy.title,
            "effective_at": policy.effective_at,
            "sha256": policy.sha256,
            "text": policy.text,
            "published_at": policy.published_at,
            "published_by": policy.published_by,
        }
        await self.coll.update_one({"_id": policy.version}, {"$setOnInsert": doc}, upsert=True)

    async def get(self, version: str) -> Policy | None:
        doc = await self.coll.find_one({"_id": version})
        if doc is None:
            return None
        summary = _summary(doc)
        return Policy(**vars(summary), text=doc["text"])

    async def current(self, now: datetime) -> PolicySummary | None:
        """Versions are few: the in-effect ones are read and the newest picked (bounded)."""
        docs = await self.coll.find({"effective_at": {"$lte": now}}, {"text": 0}).to_list(None)
        if not docs:
            return None
        newest = max(docs, key=lambda d: (normalize_time(d["effective_at"]), d["published_at"]))
        return _summary(newest)

    async def all(self, limit: int = 200) -> list[PolicySummary]:
        docs = await self.coll.find({}, {"text": 0}).to_list(limit)
        return sorted(
            (_summary(d) for d in docs), key=lambda p: normalize_time(p.effective_at), reverse=True
        )


def _tracked(doc: dict[str, Any]) -> TrackedEvent:
    return TrackedEvent(
        event_id=doc["_id"],
        subject_id=doc["subject_id"],
        name=doc["name"],
        received_at=doc["received_at"],
    )


class MongoTrackingReadModel:
    """`TrackingReadModel` on the `tracking_events` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db[TRACKING]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index(
            [("subject_id", ASCENDING), ("received_at", ASCENDING)], name="subject_time"
        )

    async def add(self, event: TrackedEvent) -> None:
        doc = {
            "_id": event.event_id,
            "subject_id": event.subject_id,
            "name": event.name,
            "received_at": event.received_at,
        }
        with contextlib.suppress(DuplicateKeyError):  # added before (a replay, a retry)
            await self.coll.insert_one(doc)

    async def has(self, event_id: str) -> bool:
        return await self.coll.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def newer(self, event: TrackedEvent) -> int:
        return await self.coll.count_documents(
            {
                "subject_id": event.subject_id,
                "$or": [
                    {"received_at": {"$gt": event.received_at}},
                    {"received_at": event.received_at, "_id": {"$gt": event.event_id}},
                ],
            }
        )

    async def trim(self, subject_id: str, keep: int) -> int:
        """Delete what lies behind the subject's `keep` newest events. Concurrent trims (the
        inline write and the projector) cannot together cut below `keep`: each deletes only
        events that had `keep` newer ones when it read, and those are never deleted first.
        Counted first (on the subject index): below the bound, nothing is read or sorted."""
        if await self.coll.count_documents({"subject_id": subject_id}) <= keep:
            return 0
        behind = (
            await self.coll.find({"subject_id": subject_id}, {"_id": 1})
            .sort([("received_at", DESCENDING), ("_id", DESCENDING)])
            .skip(keep)
            .to_list(None)
        )
        if not behind:
            return 0
        result = await self.coll.delete_many({"_id": {"$in": [d["_id"] for d in behind]}})
        return result.deleted_count

    async def of_subject(self, subject_id: str, limit: int) -> list[TrackedEvent]:
        docs = (
            await self.coll.find({"subject_id": subject_id})
            .sort([("received_at", ASCENDING), ("_id", ASCENDING)])
            .to_list(limit)
        )
        return [_tracked(d) for d in docs]

    async def count(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_id": subject_id})

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int:
        result = await self.coll.delete_many({"subject_id": subject_id}, session=session)
        return result.deleted_count

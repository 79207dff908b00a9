"""MongoDB read models and stores of the retention service.

Every read is by key, by a list of keys, or a bounded page over a range of ONE indexed
secondary field (INFRA.md: the local database scans the whole collection for an `_id` range
or when a second field sits beside a range). Lists therefore keep sort keys of their own:

- `privacy_requests`: `k_all` (= id), `k_status` (`<status>|<id>`), `k_open` (id while open),
  `k_due` (`<due_by>|<id>` while open and unanswered: the overdue list), `subject_id`;
- `legal_holds`: `k_all`, `k_until` (`<until>|<id>` while unreleased with an end), `subject_id`;
- `activity_index`: `k` (`<kind>|<trigger>|<time>|<target>`), the trigger index of policies;
- `access_packages`: `expires_at`, `subject_id`; `erasure_evidence`: `subject_id`.

Timestamps are stored as BSON dates (millisecond precision) and read back as aware UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import PiiBlob, normalize_time
from mmgen.retention.domain.activity import (
    ActivityBatch,
    ResourceActivity,
    SubjectActivity,
    index_entries,
    index_range,
    index_time,
)
from mmgen.retention.domain.contract import AuditRecord, SubjectErasedReport
from mmgen.retention.domain.evaluation import IssuedKey
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.policies import RetentionPolicy
from mmgen.retention.domain.records import (
    Candidate,
    CandidateKind,
    Evidence,
    IssuedOrder,
    StoredPackage,
)

_MAX = "\U0010ffff"
MAX_IN = 1000


def _aware(value: Any) -> Any:
    return normalize_time(value) if isinstance(value, datetime) else value


def _clean(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored document without its sort keys, datetimes aware."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key.startswith("k_"):
            continue
        out[key] = _aware(value)
    for entry in out.get("timeline") or ():
        entry["at"] = _aware(entry.get("at"))
    return out


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + MAX_IN] for i in range(0, len(items), MAX_IN)]


class MongoRequestViews:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["privacy_requests"]
        self.claims = db["privacy_request_claims"]

    async def ensure_indexes(self) -> None:
        for field in ("k_all", "k_status", "k_open", "k_due", "subject_id"):
            await self.coll.create_index([(field, ASCENDING)], name=field)

    async def claim_open(self, subject_id: str, request_type: str, request_id: str) -> str:
        key = f"{subject_id}|{request_type}"
        try:
            await self.claims.insert_one({"_id": key, "request_id": request_id})
        except DuplicateKeyError:
            doc = await self.claims.find_one({"_id": key})
            if doc is None:  # released in between: claim again
                return await self.claim_open(subject_id, request_type, request_id)
            return str(doc["request_id"])
        return request_id

    async def release_claim(self, subject_id: str, request_type: str, request_id: str) -> None:
        await self.claims.delete_one(
            {"_id": f"{subject_id}|{request_type}", "request_id": request_id}
        )

    async def put(self, view: Mapping[str, Any]) -> None:
        doc = dict(view)
        request_id = str(doc["_id"])
        keys: dict[str, Any] = {
            "k_all": request_id,
            "k_status": f"{doc['status']}|{request_id}",
        }
        unset: dict[str, str] = {}
        if doc["open"]:
            keys["k_open"] = request_id
        else:
            unset["k_open"] = ""
        if doc["open"] and doc.get("answered_at") is None and doc.get("due_by") is not None:
            keys["k_due"] = f"{index_time(doc['due_by'])}|{request_id}"
        else:
            unset["k_due"] = ""
        fields = {k: v for k, v in doc.items() if k != "_id"}
        update: dict[str, Any] = {"$set": {**fields, **keys}}
        if unset:
            update["$unset"] = unset
        with contextlib.suppress(DuplicateKeyError):  # a newer version is stored
            await self.coll.update_one(
                {"_id": request_id, "version": {"$lt": doc["version"]}}, update, upsert=True
            )

    async def set_progress(self, request_id: str, progress: Sequence[Mapping[str, Any]]) -> None:
        await self.coll.update_one(
            {"_id": request_id}, {"$set": {"progress": [dict(p) for p in progress]}}
        )

    async def get(self, request_id: str) -> dict[str, Any] | None:
        doc = await self.coll.find_one({"_id": request_id})
        return None if doc is None else _clean(doc)

    async def open_for(self, subject_id: str, request_type: str) -> dict[str, Any] | None:
        claim = await self.claims.find_one({"_id": f"{subject_id}|{request_type}"})
        if claim is None:
            return None
        doc = await self.get(str(claim["request_id"]))
        return doc if doc is not None and doc.get("open") else None

    async def of_subject(self, subject_id: str, limit: int) -> list[dict[str, Any]]:
        docs = await self.coll.find({"subject_id": subject_id}).to_list(limit)
        return sorted((_clean(d) for d in docs), key=lambda d: str(d["_id"]))

    async def erasure_subjects(self, subject_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(subject_ids)):
            cursor = self.coll.find(
                {"subject_id": {"$in": list(chunk)}},
                {"subject_id": 1, "type": 1, "open": 1, "status": 1},
            )
            async for doc in cursor:
                if doc["type"] == "erasure" and (doc["open"] or doc["status"] == "verified"):
                    found.add(str(doc["subject_id"]))
        return found

    async def page(
        self, *, status: str | None, overdue_at: datetime | None, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        if overdue_at is not None:
            lower = ""
            if after is not None:
                previous = await self.coll.find_one({"_id": after}, {"k_due": 1})
                lower = str((previous or {}).get("k_due") or "")
            query: dict[str, Any] = {
                "k_due": {"$gt": lower, "$lt": f"{index_time(overdue_at)}|{_MAX}"}
            }
            sort = "k_due"
        elif status is not None:
            lower = f"{status}|{after}" if after is not None else f"{status}|"
            query = {"k_status": {"$gt": lower, "$lt": f"{status}|{_MAX}"}}
            sort = "k_status"
        else:
            query = {"k_all": {"$gt": after or ""}}
            sort = "k_all"
        docs = await self.coll.find(query).sort(sort, ASCENDING).to_list(limit)
        out = [_clean(d) for d in docs]
        if overdue_at is not None and status is not None:
            out = [d for d in out if d["status"] == status]
        return out

    async def count_overdue(self, at: datetime) -> int:
        return await self.coll.count_documents(
            {"k_due": {"$gt": "", "$lt": f"{index_time(at)}|{_MAX}"}}
        )

    async def nearest_due(self) -> datetime | None:
        # `k_due` exists exactly while a request is open and unanswered; it sorts by deadline.
        docs = await self.coll.find({"k_due": {"$gt": ""}}).sort("k_due", ASCENDING).to_list(1)
        if not docs:
            return None
        due: datetime | None = _clean(docs[0]).get("due_by")
        return due

    async def open_ids(self, *, limit: int, after: str | None) -> list[str]:
        docs = (
            await self.coll.find({"k_open": {"$gt": after or ""}}, {"_id": 1})
            .sort("k_open", ASCENDING)
            .to_list(limit)
        )
        return [str(d["_id"]) for d in docs]


class MongoHoldViews:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["legal_holds"]

    async def ensure_indexes(self) -> None:
        for field in ("k_all", "k_until", "subject_id"):
            await self.coll.create_index([(field, ASCENDING)], name=field)

    async def put(self, hold: HoldView) -> None:
        doc = hold.to_doc()
        keys: dict[str, Any] = {"k_all": hold.hold_id}
        update: dict[str, Any] = {"$set": {**doc, **keys}}
        if hold.released_at is None and hold.until is not None:
            update["$set"]["k_until"] = f"{index_time(hold.until)}|{hold.hold_id}"
        else:
            update["$unset"] = {"k_until": ""}
        await self.coll.update_one({"_id": hold.hold_id}, update, upsert=True)

    async def get(self, hold_id: str) -> HoldView | None:
        doc = await self.coll.find_one({"_id": hold_id})
        return None if doc is None else HoldView.of(doc)

    async def of_subjects(self, subject_ids: Sequence[str]) -> dict[str, list[HoldView]]:
        out: dict[str, list[HoldView]] = {}
        for chunk in _chunks(list(subject_ids)):
            async for doc in self.coll.find({"subject_id": {"$in": list(chunk)}}):
                hold = HoldView.of(doc)
                if hold.released_at is None:
                    out.setdefault(hold.subject_id, []).append(hold)
        for holds in out.values():
            holds.sort(key=lambda h: h.hold_id)
        return out

    async def ended(self, now: datetime, limit: int) -> list[HoldView]:
        docs = (
            await self.coll.find({"k_until": {"$gt": "", "$lt": f"{index_time(now)}|{_MAX}"}})
            .sort("k_until", ASCENDING)
            .to_list(limit)
        )
        return [HoldView.of(d) for d in docs]

    async def page(self, *, limit: int, after: str | None) -> list[HoldView]:
        docs = (
            await self.coll.find({"k_all": {"$gt": after or ""}})
            .sort("k_all", ASCENDING)
            .to_list(limit)
        )
        return [HoldView.of(d) for d in docs]


class MongoPolicyStore:
    """Policies are few (one per category, trigger and action): read whole, bounded."""

    MAX_POLICIES = 1000

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["retention_policies"]

    async def put(self, policy: RetentionPolicy) -> None:
        doc = policy.to_json()
        await self.coll.replace_one({"_id": policy.policy_id}, doc, upsert=True)

    async def all(self) -> list[RetentionPolicy]:
        docs = await self.coll.find({}).to_list(self.MAX_POLICIES)
        policies = [
            RetentionPolicy.of(
                category=d["category"],
                trigger_event=d["trigger_event"],
                period=d["period"],
                action=d["action"],
                legal_basis=d["legal_basis"],
            )
            for d in docs
        ]
        return sorted(policies, key=lambda p: (p.category, p.trigger_event))


class MongoActivityStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.subjects = db["activity_subjects"]
        self.resources = db["activity_resources"]
        self.index = db["activity_index"]
        self.state = db["activity_state"]

    async def ensure_indexes(self) -> None:
        await self.index.create_index([("k", ASCENDING)], name="k")

    async def next_seq(self) -> int:
        doc = await self.state.find_one({"_id": "projection"})
        return int(doc["next_seq"]) if doc else 0

    async def load(
        self, subject_ids: Sequence[str], resource_keys: Sequence[str]
    ) -> tuple[dict[str, SubjectActivity], dict[str, ResourceActivity]]:
        subjects: dict[str, SubjectActivity] = {}
        resources: dict[str, ResourceActivity] = {}
        for chunk in _chunks(list(subject_ids)):
            async for doc in self.subjects.find({"_id": {"$in": list(chunk)}}):
                subjects[str(doc["_id"])] = SubjectActivity.of(doc)
        for chunk in _chunks(list(resource_keys)):
            async for doc in self.resources.find({"_id": {"$in": list(chunk)}}):
                resources[str(doc["_id"])] = ResourceActivity.of(doc)
        return subjects, resources

    async def save(self, batch: ActivityBatch) -> None:
        if batch.subjects:
            await self.subjects.bulk_write(
                [
                    ReplaceOne({"_id": k}, s.to_doc(), upsert=True)
                    for k, s in batch.subjects.items()
                ],
                ordered=False,
            )
        if batch.resources:
            await self.resources.bulk_write(
                [
                    ReplaceOne({"_id": k}, r.to_doc(), upsert=True)
                    for k, r in batch.resources.items()
                ],
                ordered=False,
            )
        entries: dict[str, tuple[str, datetime]] = {}
        for subject in batch.subjects.values():
            entries.update(index_entries(subject))
        for resource in batch.resources.values():
            entries.update(index_entries(resource))
        if entries:
            await self.index.bulk_write(
                [
                    ReplaceOne({"_id": entry_id}, {"k": key, "at": at}, upsert=True)
                    for entry_id, (key, at) in entries.items()
                ],
                ordered=False,
            )
        if batch.last_seq >= 0:
            await self.state.update_one(
                {"_id": "projection"}, {"$max": {"next_seq": batch.last_seq + 1}}, upsert=True
            )

    async def subject(self, subject_id: str) -> SubjectActivity | None:
        doc = await self.subjects.find_one({"_id": subject_id})
        return None if doc is None else SubjectActivity.of(doc)

    async def candidates(
        self,
        kind: CandidateKind,
        trigger_event: str,
        *,
        until: datetime,
        after: str | None,
        limit: int,
    ) -> list[Candidate]:
        lower, upper = index_range(kind, trigger_event, until, after)
        docs = (
            await self.index.find({"k": {"$gt": lower, "$lte": upper}})
            .sort("k", ASCENDING)
            .to_list(limit)
        )
        targets = [str(d["_id"]).split("|", 2)[2] for d in docs]
        if kind == "subject":
            found, _ = await self.load(targets, [])
            return [
                Candidate(str(d["k"]), _aware(d["at"]), subject=found[t])
                for d, t in zip(docs, targets, strict=True)
                if t in found
            ]
        _, resources = await self.load([], targets)
        return [
            Candidate(str(d["k"]), _aware(d["at"]), resource=resources[t])
            for d, t in zip(docs, targets, strict=True)
            if t in resources
        ]

    async def cursor(self, name: str) -> str | None:
        doc = await self.state.find_one({"_id": f"cursor:{name}"})
        return None if doc is None else doc.get("position")

    async def set_cursor(self, name: str, position: str | None) -> None:
        await self.state.replace_one({"_id": f"cursor:{name}"}, {"position": position}, upsert=True)

    async def reset(self) -> None:
        for coll in (self.subjects, self.resources, self.index, self.state):
            await coll.delete_many({})


def _issued_id(key: IssuedKey) -> str:
    policy_id, target, triggered_at = key
    return f"{policy_id}|{target}|{index_time(triggered_at)}"


class MongoOrderLog:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["policy_orders"]

    async def issued(self, keys: Sequence[IssuedKey]) -> set[IssuedKey]:
        by_id = {_issued_id(k): k for k in keys}
        found: set[IssuedKey] = set()
        for chunk in _chunks(list(by_id)):
            async for doc in self.coll.find({"_id": {"$in": list(chunk)}}, {"_id": 1}):
                found.add(by_id[str(doc["_id"])])
        return found

    async def record(self, orders: Sequence[IssuedOrder]) -> None:
        ops = [
            UpdateOne(
                {"_id": _issued_id(key)},
                {
                    "$setOnInsert": {
                        "command_id": order.command_id,
                        "run_id": order.run_id,
                        "issued_at": order.issued_at,
                    }
                },
                upsert=True,
            )
            for order in orders
            for key in order.keys
        ]
        if ops:
            await self.coll.bulk_write(ops, ordered=False)


class MongoPackageStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["access_packages"]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("expires_at", ASCENDING)], name="expires_at")
        await self.coll.create_index([("subject_id", ASCENDING)], name="subject_id")

    async def put(self, package: StoredPackage) -> None:
        await self.coll.replace_one(
            {"_id": package.package_id},
            {
                "request_id": package.request_id,
                "subject_id": package.subject_id,
                "requested_by": package.requested_by,
                "blob": package.blob.model_dump(mode="python"),
                "created_at": package.created_at,
                "expires_at": package.expires_at,
            },
            upsert=True,
        )

    async def get(self, package_id: str) -> StoredPackage | None:
        doc = await self.coll.find_one({"_id": package_id})
        if doc is None:
            return None
        return StoredPackage(
            package_id=str(doc["_id"]),
            request_id=str(doc["request_id"]),
            subject_id=str(doc["subject_id"]),
            requested_by=str(doc["requested_by"]),
            blob=PiiBlob.model_validate(doc["blob"]),
            created_at=_aware(doc["created_at"]),
            expires_at=_aware(doc["expires_at"]),
        )

    async def delete_expired(self, now: datetime) -> int:
        result = await self.coll.delete_many({"expires_at": {"$lte": now}})
        return result.deleted_count

    async def delete_subject(self, subject_id: str) -> int:
        result = await self.coll.delete_many({"subject_id": subject_id})
        return result.deleted_count

    async def count_subject(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_id": subject_id})


def _evidence(doc: Mapping[str, Any]) -> Evidence:
    report = doc.get("report")
    return Evidence(
        event_id=str(doc["_id"]),
        service=str(doc["service"]),
        subject_id=str(doc["subject_id"]),
        report=None if report is None else SubjectErasedReport.model_validate(report),
        audit_seq=doc.get("audit_seq"),
        recorded_at=_aware(doc.get("recorded_at")),
    )


class MongoEvidenceStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.coll = db["erasure_evidence"]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("subject_id", ASCENDING)], name="subject_id")

    async def _merge(self, event_id: str, base: dict[str, Any], fields: dict[str, Any]) -> Evidence:
        doc = await self.coll.find_one_and_update(
            {"_id": event_id},
            {"$set": fields, "$setOnInsert": base},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upserted
        return _evidence(doc)

    async def add_report(self, report: SubjectErasedReport) -> Evidence:
        return await self._merge(
            report.event_id,
            {"service": report.service, "subject_id": report.subject_id},
            {"report": report.model_dump(mode="python")},
        )

    async def add_audit(self, record: AuditRecord) -> Evidence:
        return await self._merge(
            record.event_id,
            {"service": record.producer, "subject_id": record.subject_id or ""},
            {"audit_seq": record.seq, "recorded_at": record.occurred_at},
        )

    async def for_subject(self, subject_id: str, limit: int) -> list[Evidence]:
        docs = await self.coll.find({"subject_id": subject_id}).to_list(limit)
        return sorted((_evidence(d) for d in docs), key=lambda e: e.event_id)


async def ensure_indexes(db: AsyncDatabase[Any]) -> None:
    """Every index the read models need (idempotent; run at start-up)."""
    await MongoRequestViews(db).ensure_indexes()
    await MongoHoldViews(db).ensure_indexes()
    await MongoActivityStore(db).ensure_indexes()
    await MongoPackageStore(db).ensure_indexes()
    await MongoEvidenceStore(db).ensure_indexes()


__all__ = [
    "MongoActivityStore",
    "MongoEvidenceStore",
    "MongoHoldViews",
    "MongoOrderLog",
    "MongoPackageStore",
    "MongoPolicyStore",
    "MongoRequestViews",
    "ensure_indexes",
]

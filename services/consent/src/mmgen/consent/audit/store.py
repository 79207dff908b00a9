"""MongoDB storage of the audit log: entries with their Merkle nodes, head, producers, heads signed.

Collections (all in the consent service's database, prefixed `audit_`):
- `audit_entries`: `{_id: seq, e: <canonical JSON text of the entry, hash included>,
  n: [node hashes completed by this leaf, level 0 up], event_id, subject_id, actor_id,
  action, event_type, producer, producer_seq}` — `e` is what is served and verified (stored
  as text, its bytes never change); the other fields are copies for indexes and filters, and
  `verify` checks that they still match `e`;
- `audit_head`: `{_id: "head", size, last_hash, frontier, recorded_at, own_seq}`;
- `audit_producers`: per producer `{contiguous, ranges, gap_since, repair_requests, ...}`;
- `audit_checkpoints`: `{_id: tree_size, root_hash, timestamp, note}` — every signed head;
- `audit_cursors`: `{_id: "audit.log", next_seq}` (the `audit.log` publisher's outbox cursor).

One append = one transaction: dedup on `event_id`, entries + nodes, producers, head. The
callback recomputes everything from the head it reads, so a driver retry is harmless, and a
concurrent writer (another instance) makes the transaction conflict instead of forking the
chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from mmgen.auditlog import merkle
from mmgen.auditlog.entry import ZERO_HASH, AuditEntry, ChainBuilder
from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.jcs import canonicalize
from mmgen.auditlog.merkle import Frontier, TreeAppender
from mmgen.consent.audit.domain import (
    AuditConflictError,
    AuditRangeInvalidError,
    ProducerProgress,
    monotonic_recorded_at,
    node_holder,
)

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

ENTRIES = "audit_entries"
HEAD = "audit_head"
PRODUCERS = "audit_producers"
CHECKPOINTS = "audit_checkpoints"
CURSORS = "audit_cursors"
HEAD_ID = "head"

INDEX_FIELDS = ("event_id", "subject_id", "actor_id", "action", "event_type", "producer")
"""Entry members copied beside `e` (filters, indexes); `producer_seq` too (numeric)."""


@dataclass(frozen=True)
class Head:
    """The log's tip: size, last hash, right frontier and last `recorded_at`."""

    size: int
    last_hash: bytes
    frontier: Frontier
    recorded_at: str | None
    own_seq: int

    @classmethod
    def empty(cls) -> Head:
        return cls(0, ZERO_HASH, Frontier(0), None, 0)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> Head:
        if doc is None:
            return cls.empty()
        return cls(
            int(doc["size"]),
            bytes.fromhex(doc["last_hash"]),
            Frontier.from_json(doc["frontier"]),
            doc.get("recorded_at"),
            int(doc.get("own_seq", 0)),
        )

    def root(self) -> bytes:
        return self.frontier.root()


@dataclass(frozen=True)
class AppendResult:
    """What one append transaction did."""

    entries: list[AuditEntry]
    duplicates: int
    head: Head
    progress: dict[str, ProducerProgress]
    closed_gaps: list[str]
    rejected: list[tuple[int, str]]
    """Items that cannot be entries (index in the input, reason): not appended."""


@dataclass(frozen=True)
class CheckpointRecord:
    tree_size: int
    root_hash: str
    timestamp: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "note": self.note,
        }


def entry_text(entry: AuditEntry) -> str:
    """The canonical JSON text of a whole entry (hash included): what `e` stores."""
    return canonicalize(entry.to_json()).decode("utf-8")


_HASH_BEFORE = b',"occurred_at":'


def text_and_leaf(entry: AuditEntry) -> tuple[str, bytes]:
    """Canonical text of the whole entry and its Merkle leaf hash, from ONE serialisation.

    In JCS order `hash` sorts between `event_type` and `occurred_at`; the first
    `,"occurred_at":` is that member's (a quote inside a string value is always escaped), so
    the hash member is spliced in there. Equal to `entry_text(entry)` (tested).
    """
    data = entry.entry_bytes
    at = data.index(_HASH_BEFORE)
    text = data[:at] + b',"hash":"' + entry.hash.hex().encode() + b'"' + data[at:]
    return text.decode("utf-8"), hashlib.sha256(b"\x00" + data).digest()


def entry_document(
    entry: AuditEntry, nodes: Sequence[bytes], text: str | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": entry.seq,
        "e": entry_text(entry) if text is None else text,
        "n": list(nodes),
    }
    doc["event_id"] = entry.event_id
    doc["subject_id"] = entry.subject_id
    doc["actor_id"] = entry.actor_id
    doc["action"] = entry.action
    doc["event_type"] = entry.event_type
    doc["producer"] = entry.producer
    doc["producer_seq"] = entry.producer_seq
    return doc


def parse_entry_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The served entry object (`e` parsed). Raises ValueError when `e` is not JSON."""
    value = json.loads(doc["e"])
    if not isinstance(value, dict):
        raise ValueError("stored entry is not a JSON object")
    return value


@dataclass(frozen=True)
class AppendPlan:
    """One batch made into entries, nodes and state changes against a known head (no I/O)."""

    base: Head
    new_head: Head
    docs: list[dict[str, Any]]
    entries: list[AuditEntry]
    duplicates: int
    rejected: list[tuple[int, str]]
    progress: dict[str, ProducerProgress]
    producer_updates: list[tuple[str, dict[str, Any], dict[str, int]]]
    closed: list[str]

    @property
    def event_ids(self) -> set[str]:
        return {e.event_id for e in self.entries}

    def result(self) -> AppendResult:
        return AppendResult(
            self.entries, self.duplicates, self.new_head, self.progress, self.closed, self.rejected
        )


def plan_append(
    items: Sequence[Mapping[str, Any]],
    head: Head,
    seen: set[str],
    producers: Mapping[str, ProducerProgress],
    now: datetime,
) -> AppendPlan:
    """Chain, hash and place a batch after `head`: entries in arrival order, skipping ids in
    `seen` (and repeats inside the batch), rejecting items that cannot be entries."""
    seen = set(seen)
    builder = ChainBuilder(head.size, head.last_hash)
    appender = TreeAppender(head.frontier)
    recorded_at = monotonic_recorded_at(now, head.recorded_at)
    own_seq = head.own_seq
    docs: list[dict[str, Any]] = []
    entries: list[AuditEntry] = []
    per_producer: dict[str, list[int]] = {}
    duplicates = 0
    rejected: list[tuple[int, str]] = []
    for position, item in enumerate(items):
        event_id = str(item["event_id"])
        if event_id in seen:
            duplicates += 1
            continue
        fields = dict(item)
        own = fields.get("producer_seq") is None
        if own:
            fields["producer_seq"] = own_seq + 1
        try:
            entry = builder.append(recorded_at=recorded_at, **fields)
        except (AuditLogError, TypeError, ValueError) as exc:
            rejected.append((position, f"{type(exc).__name__}: {exc}"))
            continue
        if own:
            own_seq += 1
        seen.add(event_id)
        text, leaf = text_and_leaf(entry)
        nodes = appender.append(leaf)
        docs.append(entry_document(entry, [node.hash for node in nodes], text))
        entries.append(entry)
        per_producer.setdefault(entry.producer, []).append(entry.producer_seq)
    new_head = Head(appender.size, builder.prev_hash, appender.frontier, recorded_at, own_seq)
    progress: dict[str, ProducerProgress] = {}
    updates: list[tuple[str, dict[str, Any], dict[str, int]]] = []
    closed: list[str] = []
    for producer, seqs in per_producer.items():
        before = producers.get(producer) or ProducerProgress(producer)
        state = ProducerProgress(producer, before.contiguous, [list(r) for r in before.ranges])
        state.add(seqs)
        progress[producer] = state
        fields_set: dict[str, Any] = {
            **state.to_document(),
            "missing": state.missing,
            "highest": state.highest,
            "last_seen_at": now,
        }
        if state.ranges and not before.ranges:
            fields_set["gap_since"] = now
        elif not state.ranges:
            fields_set["gap_since"] = None
            if before.ranges:
                closed.append(producer)
                fields_set["repair_requests_open"] = 0
        updates.append((producer, fields_set, {"entries": len(seqs)}))
    return AppendPlan(
        head, new_head, docs, entries, duplicates, rejected, progress, updates, closed
    )


class MongoAuditStore:
    """The audit log in MongoDB. Read paths touch bounded `_id` ranges or single keys."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.entries = db[ENTRIES]
        self.head_coll = db[HEAD]
        self.producers = db[PRODUCERS]
        self.checkpoints = db[CHECKPOINTS]
        self.cursors = db[CURSORS]

    async def ensure_indexes(self) -> None:
        """Dedup on event_id; subject and actor filters (Art. 15 report, actor queries)."""
        await self.entries.create_index("event_id", unique=True, name="event_id_unique")
        await self.entries.create_index([("subject_id", ASCENDING), ("_id", ASCENDING)])
        await self.entries.create_index([("actor_id", ASCENDING), ("_id", ASCENDING)])

    # --- append ---------------------------------------------------------------------------

    async def append(
        self, items: Sequence[Mapping[str, Any]], *, now: datetime | None = None
    ) -> AppendResult:
        """Append events (entry fields from `domain.entry_fields`) in ONE transaction.

        Events already in the log (same `event_id`) are skipped. Items without a
        `producer_seq` are the audit component's own entries: numbered from the head's
        `own_seq` counter inside the same transaction (gapless by construction). Everything
        is read and computed inside the transaction: a driver retry recomputes it.
        """
        at = now or datetime.now(UTC)

        async def txn(session: AsyncClientSession) -> AppendResult:
            head = Head.from_document(
                await self.head_coll.find_one({"_id": HEAD_ID}, session=session)
            )
            seen = await self.seen_ids([str(i["event_id"]) for i in items], session=session)
            producers = await self.progress({str(i["producer"]) for i in items}, session=session)
            plan = plan_append(items, head, seen, producers, at)
            await self._write(plan, session)
            return plan.result()

        async with self.db.client.start_session() as session:
            result: AppendResult = await session.with_transaction(txn)
        return result

    async def append_plan(self, plan: AppendPlan) -> AppendResult:
        """Commit a plan computed outside the transaction (the projector's pipelined path).

        The head update is conditioned on the head the plan was built on, so a plan made
        stale by another writer raises `AuditConflictError` and changes nothing; a duplicate
        that slipped past the plan's dedup fails on the unique `event_id` index.
        """
        async with self.db.client.start_session() as session:
            await session.with_transaction(lambda s: self._write(plan, s))
        return plan.result()

    async def seen_ids(
        self, ids: Sequence[str], *, session: AsyncClientSession | None = None
    ) -> set[str]:
        """Which of these event ids the log already holds (one `$in` on the unique index)."""
        if not ids:
            return set()
        cursor = self.entries.find(
            {"event_id": {"$in": list(ids)}}, projection={"event_id": 1, "_id": 0}, session=session
        )
        return {d["event_id"] async for d in cursor}

    async def progress(
        self, producers: Iterable[str], *, session: AsyncClientSession | None = None
    ) -> dict[str, ProducerProgress]:
        names = list(producers)
        found = {
            d["_id"]: d async for d in self.producers.find({"_id": {"$in": names}}, session=session)
        }
        return {n: ProducerProgress.from_document(n, found.get(n)) for n in names}

    async def _write(self, plan: AppendPlan, session: AsyncClientSession) -> None:
        if not plan.docs:
            return
        base, new = plan.base, plan.new_head
        state = {
            "size": new.size,
            "last_hash": new.last_hash.hex(),
            "frontier": new.frontier.to_json(),
            "recorded_at": new.recorded_at,
            "own_seq": new.own_seq,
        }
        if base.size == 0:
            try:
                await self.head_coll.insert_one({"_id": HEAD_ID, **state}, session=session)
            except DuplicateKeyError as exc:
                raise AuditConflictError("the log was started by another writer") from exc
        else:
            update = await self.head_coll.update_one(
                {"_id": HEAD_ID, "size": base.size, "last_hash": base.last_hash.hex()},
                {"$set": state},
                session=session,
            )
            if update.matched_count == 0:
                raise AuditConflictError(f"head moved past {base.size} before this append")
        await self.entries.insert_many(plan.docs, ordered=False, session=session)
        for producer, fields, inc in plan.producer_updates:
            if producer in plan.closed:
                await self.producers.update_one(
                    {"_id": producer, "repair_requests_open": {"$gt": 0}},
                    {"$inc": {"repairs": 1}},
                    session=session,
                )
            await self.producers.update_one(
                {"_id": producer}, {"$set": fields, "$inc": inc}, upsert=True, session=session
            )

    async def note_repair_request(self, producer: str, at: datetime) -> None:
        await self.producers.update_one(
            {"_id": producer},
            {
                "$set": {"last_request_at": at},
                "$inc": {"repair_requests": 1, "repair_requests_open": 1},
            },
        )

    async def producer_states(self) -> list[dict[str, Any]]:
        """Every producer's continuity state (a handful of documents: one per service)."""
        return [d async for d in self.producers.find({})]

    # --- reads ----------------------------------------------------------------------------

    async def head(self) -> Head:
        return Head.from_document(await self.head_coll.find_one({"_id": HEAD_ID}))

    async def get_document(self, seq: int) -> dict[str, Any] | None:
        return await self.entries.find_one({"_id": seq}, projection={"n": 0})

    async def window(
        self,
        start: int,
        end: int,
        filters: Mapping[str, Any] | None = None,
        *,
        with_nodes: bool = False,
    ) -> list[dict[str, Any]]:
        """Entry documents with `start <= seq < end` (a bounded `_id` range), in seq order."""
        if end <= start:
            return []
        query: dict[str, Any] = {"_id": {"$gte": start, "$lt": end}}
        if filters:
            query.update(filters)
        projection = None if with_nodes else {"n": 0}
        docs = await self.entries.find(query, projection=projection).to_list(None)
        docs.sort(key=lambda d: d["_id"])
        return docs

    async def iter_documents(
        self, start: int, end: int, *, window: int = 5_000, with_nodes: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Entry documents `start <= seq < end`, read in bounded windows."""
        seq = start
        while seq < end:
            upto = min(end, seq + window)
            for doc in await self.window(seq, upto, with_nodes=with_nodes):
                yield doc
            seq = upto

    async def nodes(self, node_ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Merkle nodes by `(level, index)`: one `$in` query on the holder entries' `_id`."""
        holders: dict[int, list[tuple[int, int]]] = {}
        for level, index in node_ids:
            holders.setdefault(node_holder(level, index), []).append((level, index))
        if not holders:
            return {}
        found: dict[tuple[int, int], bytes] = {}
        cursor = self.entries.find({"_id": {"$in": list(holders)}}, projection={"n": 1})
        async for doc in cursor:
            stored = doc.get("n") or []
            for level, index in holders[doc["_id"]]:
                if level < len(stored):
                    found[(level, index)] = bytes(stored[level])
        return found

    async def get_many(self, ids: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        """`AsyncBatchNodeReader` of `mmgen.auditlog.merkle` (async proofs from storage)."""
        return await self.nodes(ids)

    async def _plan(self, plan: merkle.ProofPlan) -> list[bytes]:
        return plan.assemble(await self.nodes(plan.nodes))

    async def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        return await self._plan(merkle.plan_inclusion(seq, tree_size))

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return await self._plan(merkle.plan_consistency(first, second))

    async def root(self, tree_size: int) -> bytes:
        return (
            (await self._plan(merkle.plan_root(tree_size)))[0] if tree_size else merkle.EMPTY_ROOT
        )

    async def frontier(self, tree_size: int) -> Frontier:
        plan = merkle.plan_frontier(tree_size)
        return Frontier(tree_size, tuple(await self._plan(plan)))

    async def seq_at_time(self, stamp: str, size: int) -> int:
        """First seq whose `recorded_at >= stamp` (binary search: `recorded_at` is monotonic)."""
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            doc = await self.entries.find_one({"_id": mid}, projection={"e": 1})
            recorded = parse_entry_document(doc)["recorded_at"] if doc else ""
            if recorded < stamp:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def subject_documents(self, subject_id: str, limit: int) -> list[dict[str, Any]]:
        """A subject's entries through the (subject_id, _id) index, at most `limit`."""
        docs = await self.entries.find({"subject_id": subject_id}, projection={"n": 0}).to_list(
            limit + 1
        )
        docs.sort(key=lambda d: d["_id"])
        return docs

    # --- checkpoints ----------------------------------------------------------------------

    async def save_checkpoint(self, record: CheckpointRecord) -> bool:
        try:
            await self.checkpoints.insert_one(
                {
                    "_id": record.tree_size,
                    "root_hash": record.root_hash,
                    "timestamp": record.timestamp,
                    "note": record.note,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def checkpoint(self, tree_size: int) -> CheckpointRecord | None:
        doc = await self.checkpoints.find_one({"_id": tree_size})
        return _checkpoint(doc) if doc else None

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        doc = await self.checkpoints.find_one(sort=[("_id", DESCENDING)])
        return _checkpoint(doc) if doc else None

    async def checkpoint_within(self, first: int, last: int) -> CheckpointRecord | None:
        """The largest signed head with `first < tree_size <= last`."""
        docs = await self.checkpoints.find(
            {"_id": {"$gt": first, "$lte": last}}, projection={"_id": 1}
        ).to_list(None)
        if not docs:
            return None
        return await self.checkpoint(max(d["_id"] for d in docs))

    # --- publisher cursor -----------------------------------------------------------------

    async def cursor(self, name: str) -> int:
        doc = await self.cursors.find_one({"_id": name})
        return int(doc["next_seq"]) if doc else 0

    async def advance_cursor(self, name: str, next_seq: int) -> None:
        await self.cursors.update_one({"_id": name}, {"$max": {"next_seq": next_seq}}, upsert=True)


def _checkpoint(doc: Mapping[str, Any]) -> CheckpointRecord:
    return CheckpointRecord(int(doc["_id"]), doc["root_hash"], doc["timestamp"], doc["note"])


def check_range(seq: int, size: int) -> None:
    if not 0 <= seq < size:
        raise AuditRangeInvalidError(f"seq {seq} is not in the log (size {size})")


__all__ = [
    "AppendResult",
    "CheckpointRecord",
    "Head",
    "MongoAuditStore",
    "check_range",
    "entry_document",
    "entry_text",
    "parse_entry_document",
]

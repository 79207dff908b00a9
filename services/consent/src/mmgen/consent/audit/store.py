"""MongoDB storage of the audit log: entries, Merkle tiles, head, producers, heads signed.

Collections (all in the consent service's database, prefixed `audit_`):
- `audit_pages`: the entries, `PAGE_SIZE` (32) per document. Page `p` holds seqs
  `[32·p, 32·p + k)`, one element per entry in each array: `{_id: p, k, e: [canonical JSON
  text of the entry, hash included], event_id: [...], subject_id: [...], actor_id: [...],
  action: [...], event_type: [...], producer: [...], producer_seq: [...]}` — `e` is what is
  served and verified (stored as text, its bytes never change); the other arrays are copies
  for indexes and filters, and `verify` checks that they still match `e`. Indexes:
  `event_id` unique (dedup across pages), `(subject_id, _id)`, `(actor_id, _id)`;
- `audit_tiles`: the Merkle tree's complete nodes in tiles of `TILE_HEIGHT` (8) levels: tile
  `(t, k)` holds the nodes of levels `[8t, 8t + 8)` inside the subtree rooted at node
  `(8t + 8, k)` — up to 510 hashes, `{_id: k·64 + t, c, h: [hashes in completion order]}`.
  An inclusion proof at 1,000,000 entries reads 3 tiles (a consistency proof at most 6, plus
  the right edge), all in one `$in`; nodes only ever join a tile at its end;
- `audit_head`: `{_id: "head", size, last_hash, frontier, recorded_at, own_seq, layout}`;
- `audit_producers`: per producer `{contiguous, ranges, gap_since, repair_requests, ...}`;
- `audit_checkpoints`: `{_id: tree_size, root_hash, timestamp, note, cosignatures, cosigners}`
  — every signed head, with the witnesses' cosignature lines and who made each;
- `audit_cursors`: `{_id: "audit.log", next_seq}` (the `audit.log` publisher's outbox cursor),
  `{_id: "witness:<name>+<key ID>", size}` (the size each witness cosigned last).

Why pages and tiles: SecantusDB's insert cost is per document and per index key (INFRA.md);
with the three indexes, one document per entry capped inserts near 1,700 entries/s on the
2-core host, 32 entries per document passed 5,000/s (bench/bench_audit_ingest.py records the
ingest rate); one document read costs about as much as the next, so proofs read few, small
tiles. Every read is by keys: seq `s` is element `s % 32` of page `s // 32`, a window of seqs
is the list of its page ids (SecantusDB scans the whole collection for an `_id` range, but
looks a list of `_id`s up by key; a subject or actor filter goes through its `(field, _id)`
index, which does bound the range); node `(l, i)` is at a position computed from `(l, i)`
in one tile.

One append = one transaction: head (conditioned on the size and last hash it was planned
on), the tail of the partial last page (conditioned on its count and on not holding any of
the new event ids), the new pages in one `insert_many`, the tiles in one `bulk_write` (each
extended tile conditioned on its count), the producers in one `bulk_write`.
Planning (`plan_append`: dedup, chain, hashes, tree nodes, pages, producer progress) is pure,
so it can run ahead of the write (the projector plans batch N+1 while N commits); a plan
made stale by another writer, or holding an event id that reached the log after it was
planned, changes nothing and raises `AuditConflictError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

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
)
from mmgen.events.concerns import durable, durable_session

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

PAGES = "audit_pages"
TILES = "audit_tiles"
HEAD = "audit_head"
PRODUCERS = "audit_producers"
CHECKPOINTS = "audit_checkpoints"
#: Document in the cursors collection naming the newest signed head (`tree_size`).
LATEST_CHECKPOINT = "latest-checkpoint"
#: Documents in the cursors collection, one per witness: the size it cosigned last.
WITNESS_CURSOR = "witness:"
CURSORS = "audit_cursors"
HEAD_ID = "head"
V1_ENTRIES = "audit_entries"
"""The first layout's collection (one document per entry), moved into pages on start."""

PAGE_SIZE = 32
TILE_HEIGHT = 8
LAYOUT = 2
"""Storage layout version, kept in the head (1: one document per entry, no marker)."""

COPY_FIELDS = ("event_id", "subject_id", "actor_id", "action", "event_type", "producer")
INDEXED_COPIES = ("subject_id", "actor_id")
"""Filters an index `(<field>, _id)` serves (the others are checked on the pages read)."""
"""Entry members copied beside `e` (filters, indexes); `producer_seq` too (numeric)."""
DUPLICATE_KEY = 11000


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

    def to_document(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "last_hash": self.last_hash.hex(),
            "frontier": self.frontier.to_json(),
            "recorded_at": self.recorded_at,
            "own_seq": self.own_seq,
            "layout": LAYOUT,
        }

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
    """A signed head: `note` as the log signed it, and the witnesses' cosignature lines
    (`cosigners[i]` names the witness, `<name>+<key ID>`, of `cosignatures[i]`)."""

    tree_size: int
    root_hash: str
    timestamp: str
    note: str
    cosignatures: tuple[str, ...] = ()
    cosigners: tuple[str, ...] = ()

    @property
    def cosigned_note(self) -> str:
        """The note with every signature line: the log's, then each witness's."""
        return self.note + "".join(self.cosignatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "note": self.cosigned_note,
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


def entry_row(entry: AuditEntry, text: str | None = None) -> dict[str, Any]:
    """One entry as the read paths see it: `{_id: seq, e, <copies>}` (one page element)."""
    return {
        "_id": entry.seq,
        "e": entry_text(entry) if text is None else text,
        "event_id": entry.event_id,
        "subject_id": entry.subject_id,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "event_type": entry.event_type,
        "producer": entry.producer,
        "producer_seq": entry.producer_seq,
    }


def parse_entry_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The served entry object (`e` parsed). Raises ValueError when `e` is not JSON."""
    text = doc["e"]
    if not isinstance(text, str):
        raise ValueError("stored entry is not text")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("stored entry is not a JSON object")
    return value


# --- pages -------------------------------------------------------------------------------


def page_of(seq: int) -> tuple[int, int]:
    """`(page, position)` of an entry."""
    return divmod(seq, PAGE_SIZE)


@dataclass(frozen=True)
class PageExtension:
    """Entries that go into the log's partial last page (`count` entries already there)."""

    page: int
    count: int
    columns: dict[str, list[Any]]

    @property
    def added(self) -> int:
        return len(self.columns["e"])


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0] if name != "_id"}


def paginate(
    first_seq: int, rows: Sequence[Mapping[str, Any]]
) -> tuple[PageExtension | None, list[dict[str, Any]]]:
    """Place rows of consecutive seqs from `first_seq`: the tail of the partial page the log
    ends in (an extension), then whole new page documents."""
    extension = None
    pages: list[dict[str, Any]] = []
    page, offset = page_of(first_seq)
    at = 0
    if offset and rows:
        at = min(len(rows), PAGE_SIZE - offset)
        extension = PageExtension(page, offset, _columns(rows[:at]))
        page += 1
    while at < len(rows):
        chunk = rows[at : at + PAGE_SIZE]
        pages.append({"_id": page, "k": len(chunk), **_columns(chunk)})
        at += len(chunk)
        page += 1
    return extension, pages


def expand_page(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entry rows of a page document, in seq order (missing copies read as None, so a
    damaged page surfaces in `verify` rather than as an exception)."""
    base = int(doc["_id"]) * PAGE_SIZE
    texts = doc.get("e")
    if not isinstance(texts, list):
        return []
    columns = {name: doc.get(name) for name in (*COPY_FIELDS, "producer_seq")}
    rows = []
    for i, text in enumerate(texts[:PAGE_SIZE]):
        row: dict[str, Any] = {"_id": base + i, "e": text}
        for name, column in columns.items():
            row[name] = column[i] if isinstance(column, list) and i < len(column) else None
        rows.append(row)
    return rows


# --- tiles -------------------------------------------------------------------------------


def tile_of(level: int, index: int) -> tuple[int, int]:
    """`(tile key, position)` of node `(level, index)`.

    Inside a tile, nodes are numbered in the order the append-only tree completes them
    (post-order: both children, then the parent), so a tile only ever grows at its end.
    """
    tile_level, r = divmod(level, TILE_HEIGHT)
    span = TILE_HEIGHT - r
    tile = index >> span
    m = ((index - (tile << span)) + 1) << r
    return (tile << 6) | tile_level, 2 * (m - 1) - (m - 1).bit_count() + r


def leaf_nodes(seq: int) -> list[tuple[int, int]]:
    """The nodes that appending leaf `seq` completes: the leaf, then one per trailing 1-bit."""
    ones = ((seq + 1) & -(seq + 1)).bit_length() - 1
    return [(level, seq >> level) for level in range(ones + 1)]


@dataclass
class TileWrite:
    """Hashes to add to one tile, from position `first` on (0: a new tile)."""

    key: int
    first: int
    hashes: list[bytes]


def tile_writes(nodes: Iterable[tuple[int, int, bytes]]) -> list[TileWrite]:
    """Group newly completed nodes `(level, index, hash)`, in completion order, by tile."""
    writes: dict[int, TileWrite] = {}
    for level, index, value in nodes:
        key, position = tile_of(level, index)
        write = writes.get(key)
        if write is None:
            writes[key] = TileWrite(key, position, [value])
        elif position == write.first + len(write.hashes):
            write.hashes.append(value)
        else:
            raise ValueError(f"node ({level}, {index}) out of completion order")
    return list(writes.values())


def tile_operations(writes: Sequence[TileWrite]) -> tuple[list[Any], int]:
    """`bulk_write` operations of tile writes, and how many must match an existing tile."""
    operations: list[Any] = []
    extensions = 0
    for write in writes:
        if write.first == 0:
            operations.append(
                InsertOne({"_id": write.key, "c": len(write.hashes), "h": write.hashes})
            )
        else:
            extensions += 1
            operations.append(
                UpdateOne(
                    {"_id": write.key, "c": write.first},
                    {"$push": {"h": {"$each": write.hashes}}, "$inc": {"c": len(write.hashes)}},
                )
            )
    return operations, extensions


# --- planning (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class AppendPlan:
    """One batch made into entries, pages and state changes against a known head (no I/O)."""

    base: Head
    new_head: Head
    entries: list[AuditEntry]
    extension: PageExtension | None
    pages: list[dict[str, Any]]
    tiles: list[TileWrite]
    duplicates: int
    rejected: list[tuple[int, str]]
    progress: dict[str, ProducerProgress]
    producer_updates: list[tuple[str, dict[str, Any], dict[str, int]]]
    closed: list[str]
    event_ids: frozenset[str] = field(default_factory=frozenset)
    """Ids this plan appends (a pipelined next batch counts them as seen)."""

    @property
    def appended(self) -> int:
        return self.new_head.size - self.base.size

    def result(self) -> AppendResult:
        return AppendResult(
            self.entries, self.duplicates, self.new_head, self.progress, self.closed, self.rejected
        )


def progress_updates(
    per_producer: Mapping[str, list[int]],
    producers: Mapping[str, ProducerProgress],
    now: datetime,
) -> tuple[
    dict[str, ProducerProgress], list[tuple[str, dict[str, Any], dict[str, int]]], list[str]
]:
    """Producer continuity after appending these `producer_seq`s: states, updates, gaps closed."""
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
            if before.ranges or before.repaired_tail(state):
                closed.append(producer)
                fields_set["repair_requests_open"] = 0
        updates.append((producer, fields_set, {"entries": len(seqs)}))
    return progress, updates, closed


def plan_append(
    items: Sequence[Mapping[str, Any]],
    head: Head,
    seen: set[str] | frozenset[str],
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
    rows: list[dict[str, Any]] = []
    nodes: list[tuple[int, int, bytes]] = []
    entries: list[AuditEntry] = []
    appended: set[str] = set()
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
        appended.add(event_id)
        text, leaf = text_and_leaf(entry)
        nodes.extend((node.level, node.index, node.hash) for node in appender.append(leaf))
        rows.append(entry_row(entry, text))
        entries.append(entry)
        per_producer.setdefault(entry.producer, []).append(entry.producer_seq)
    new_head = Head(appender.size, builder.prev_hash, appender.frontier, recorded_at, own_seq)
    extension, pages = paginate(head.size, rows)
    progress, updates, closed = progress_updates(per_producer, producers, now)
    return AppendPlan(
        head,
        new_head,
        entries,
        extension,
        pages,
        tile_writes(nodes),
        duplicates,
        rejected,
        progress,
        updates,
        closed,
        frozenset(appended),
    )


class MongoAuditStore:
    """The audit log in MongoDB. Read paths look documents up by key (lists of keys)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        # Seqs come from the head: every collection of the log reads and writes with
        # `majority`, so a failover cannot roll back an entry whose seq is then reused.
        self.pages = durable(db[PAGES])
        self.tiles = durable(db[TILES])
        self.head_coll = durable(db[HEAD])
        self.producers = durable(db[PRODUCERS])
        self.checkpoints = durable(db[CHECKPOINTS])
        self.cursors = durable(db[CURSORS])

    async def ensure_indexes(self) -> None:
        """Dedup on event_id; subject and actor filters (Art. 15 report, actor queries).

        Also moves a log kept in the first layout (one document per entry) into pages.
        """
        await self.pages.create_index("event_id", unique=True, name="event_id_unique")
        await self.pages.create_index([("subject_id", ASCENDING), ("_id", ASCENDING)])
        await self.pages.create_index([("actor_id", ASCENDING), ("_id", ASCENDING)])
        await self.migrate_v1()

    async def migrate_v1(self) -> int:
        """Copy a first-layout log (`audit_entries`, `_id` = seq) into pages; returns the
        entries moved. Restartable: until the head is marked, a rerun starts over. A missing
        entry is kept as an unreadable one, so `verify` still names it."""
        doc = await self.head_coll.find_one({"_id": HEAD_ID})
        if doc is None or doc.get("layout") == LAYOUT:
            return 0
        size = int(doc["size"])
        old = self.db[V1_ENTRIES]
        await self.pages.delete_many({})
        await self.tiles.delete_many({})
        window = PAGE_SIZE * 128
        for start in range(0, size, window):
            end = min(size, start + window)
            seqs = list(range(start, end))
            found = {d["_id"]: d async for d in old.find({"_id": {"$in": seqs}})}
            rows = [_v1_row(seq, found.get(seq)) for seq in seqs]
            _, pages = paginate(start, rows)
            await self.pages.insert_many(pages, ordered=False)
            nodes = []
            for seq in range(start, end):
                # A missing or damaged entry keeps its tile positions (zeros: `verify` names it).
                stored = list((found.get(seq) or {}).get("n") or [])
                for level, index in leaf_nodes(seq):
                    value = stored[level] if level < len(stored) else None
                    nodes.append((level, index, value if isinstance(value, bytes) else bytes(32)))
            await self._write_tiles(tile_writes(nodes), None)
        await self.head_coll.update_one({"_id": HEAD_ID}, {"$set": {"layout": LAYOUT}})
        await old.drop()
        return size

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

        async with durable_session(self.db.client) as session:
            result: AppendResult = await session.with_transaction(txn)
        return result

    async def append_plan(self, plan: AppendPlan) -> AppendResult:
        """Commit a plan computed outside the transaction (the projector's pipelined path).

        All or nothing: the head update is conditioned on the head the plan was built on,
        the partial page's on its count and on holding none of the plan's event ids, and the
        unique `event_id` index covers the other pages — a stale plan, or one holding an
        event that reached the log after it was planned, raises `AuditConflictError`.
        """
        async with durable_session(self.db.client) as session:
            await session.with_transaction(lambda s: self._write(plan, s))
        return plan.result()

    async def seen_ids(
        self, ids: Sequence[str], *, session: AsyncClientSession | None = None
    ) -> set[str]:
        """Which of these event ids the log already holds (one `$in` on the unique index)."""
        if not ids:
            return set()
        wanted = set(ids)
        cursor = self.pages.find(
            {"event_id": {"$in": list(wanted)}}, projection={"event_id": 1}, session=session
        )
        found: set[str] = set()
        async for doc in cursor:
            found.update(i for i in doc.get("event_id") or () if i in wanted)
        return found

    async def progress(
        self, producers: Iterable[str], *, session: AsyncClientSession | None = None
    ) -> dict[str, ProducerProgress]:
        names = list(producers)
        if not names:
            return {}
        found = {
            d["_id"]: d async for d in self.producers.find({"_id": {"$in": names}}, session=session)
        }
        return {n: ProducerProgress.from_document(n, found.get(n)) for n in names}

    async def _write(self, plan: AppendPlan, session: AsyncClientSession) -> None:
        if plan.extension is None and not plan.pages:
            return
        base = plan.base
        state = plan.new_head.to_document()
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
        extension = plan.extension
        if extension is not None:
            try:
                pushed = await self.pages.update_one(
                    {
                        "_id": extension.page,
                        "k": extension.count,
                        "event_id": {"$nin": extension.columns["event_id"]},
                    },
                    {
                        "$push": {n: {"$each": v} for n, v in extension.columns.items()},
                        "$set": {"k": extension.count + extension.added},
                    },
                    session=session,
                )
            except DuplicateKeyError as exc:
                raise AuditConflictError("an event of this batch is in the log already") from exc
            if pushed.matched_count == 0:
                raise AuditConflictError(
                    f"page {extension.page} changed or holds an event of this batch already"
                )
        if plan.pages:
            try:
                await self.pages.insert_many(plan.pages, ordered=False, session=session)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") == DUPLICATE_KEY for e in errors):
                    raise AuditConflictError(
                        "an event of this batch is in the log already"
                    ) from exc
                raise
        await self._write_tiles(plan.tiles, session)
        operations: list[UpdateOne] = []
        for producer, fields, inc in plan.producer_updates:
            if producer in plan.closed:
                operations.append(
                    UpdateOne(
                        {"_id": producer, "repair_requests_open": {"$gt": 0}},
                        {"$inc": {"repairs": 1}},
                    )
                )
            operations.append(
                UpdateOne({"_id": producer}, {"$set": fields, "$inc": inc}, upsert=True)
            )
        if operations:
            await self.producers.bulk_write(operations, ordered=True, session=session)

    async def _write_tiles(
        self, writes: Sequence[TileWrite], session: AsyncClientSession | None
    ) -> None:
        operations, extensions = tile_operations(writes)
        if not operations:
            return
        try:
            done = await self.tiles.bulk_write(operations, ordered=True, session=session)
        except BulkWriteError as exc:
            raise AuditConflictError("a Merkle tile was written by another writer") from exc
        if done.matched_count != extensions:
            raise AuditConflictError("a Merkle tile moved on before this append")

    async def note_repair_request(self, producer: str, at: datetime) -> None:
        await self.producers.update_one(
            {"_id": producer},
            {
                "$set": {"last_request_at": at},
                "$inc": {"repair_requests": 1, "repair_requests_open": 1},
            },
        )

    async def note_announced(self, producer: str, last_seq: int) -> None:
        """The producer says it published up to `last_seq` (kept as the highest announced)."""
        await self.producers.update_one(
            {"_id": producer}, {"$max": {"announced": last_seq}}, upsert=True
        )

    async def producer_states(self) -> list[dict[str, Any]]:
        """Every producer's continuity state (a handful of documents: one per service)."""
        return [d async for d in self.producers.find({})]

    # --- reads ----------------------------------------------------------------------------

    async def head(self) -> Head:
        return Head.from_document(await self.head_coll.find_one({"_id": HEAD_ID}))

    async def document_of_event(self, event_id: str) -> dict[str, Any] | None:
        """The entry row of the event `event_id` (its page found by the unique index), or None."""
        doc = await self.pages.find_one({"event_id": event_id})
        if doc is None:
            return None
        return next((row for row in expand_page(doc) if row["event_id"] == event_id), None)

    async def get_document(self, seq: int) -> dict[str, Any] | None:
        """The entry row at `seq` (its page read by key), or None."""
        if seq < 0:
            return None
        page, position = page_of(seq)
        doc = await self.pages.find_one({"_id": page})
        rows = expand_page(doc) if doc else []
        return rows[position] if position < len(rows) else None

    async def window(
        self,
        start: int,
        end: int,
        filters: Mapping[str, Any] | None = None,
        *,
        with_nodes: bool = False,
    ) -> list[dict[str, Any]]:
        """Entry rows with `start <= seq < end` (the pages of that range, by key) matching every
        filter (equality on the copies), in seq order; `with_nodes`: each row's `n`, the
        stored hashes of the nodes its append completed (level 0 up, up to a missing one)."""
        if end <= start:
            return []
        first, last = start // PAGE_SIZE, (end - 1) // PAGE_SIZE
        wanted = dict(filters or {})
        indexed = [name for name in INDEXED_COPIES if name in wanted]
        query: dict[str, Any]
        if indexed:
            # The (subject_id, _id) / (actor_id, _id) index bounds the range (cost ∝ matches),
            # but only when the query names nothing else: the other filters apply per row.
            query = {"_id": {"$gte": first, "$lte": last}, indexed[0]: wanted[indexed[0]]}
        else:
            # SecantusDB does not bound an `_id` range by the `_id` index (it scans the whole
            # collection); a list of keys it looks up one by one.
            query = {"_id": {"$in": list(range(first, last + 1))}, **wanted}
        rows = [
            row
            for doc in await self.pages.find(query).to_list(None)
            for row in expand_page(doc)
            if start <= row["_id"] < end and all(row.get(k) == v for k, v in wanted.items())
        ]
        rows.sort(key=lambda d: d["_id"])
        if with_nodes and rows:
            wanted_nodes = {row["_id"]: leaf_nodes(row["_id"]) for row in rows}
            stored = await self.nodes([n for ids in wanted_nodes.values() for n in ids])
            for row in rows:
                column: list[bytes] = []
                for node in wanted_nodes[row["_id"]]:
                    if node not in stored:
                        break
                    column.append(stored[node])
                row["n"] = column
        return rows

    async def iter_documents(
        self, start: int, end: int, *, window: int = 4_096, with_nodes: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Entry rows `start <= seq < end`, read in bounded windows."""
        seq = start
        while seq < end:
            upto = min(end, seq + window)
            for doc in await self.window(seq, upto, with_nodes=with_nodes):
                yield doc
            seq = upto

    async def nodes(self, node_ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Merkle nodes by `(level, index)`: one `$in` query on the tiles holding them."""
        wanted: dict[int, list[tuple[tuple[int, int], int]]] = {}
        for level, index in node_ids:
            key, position = tile_of(level, index)
            wanted.setdefault(key, []).append(((level, index), position))
        if not wanted:
            return {}
        found: dict[tuple[int, int], bytes] = {}
        async for doc in self.tiles.find({"_id": {"$in": list(wanted)}}):
            column = doc.get("h")
            if not isinstance(column, list):
                continue
            for node, position in wanted.get(doc["_id"], ()):
                value = column[position] if position < len(column) else None
                if isinstance(value, bytes) and len(value) == 32:
                    found[node] = value
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
        """First seq whose `recorded_at >= stamp` (binary search: `recorded_at` is monotonic):
        over pages by their first entry, then inside the page before the one found."""
        if size <= 0:
            return 0
        lo, hi = 0, (size - 1) // PAGE_SIZE + 1
        while lo < hi:
            mid = (lo + hi) // 2
            doc = await self.pages.find_one({"_id": mid}, projection={"e": {"$slice": 1}})
            if _recorded_at(doc, 0) < stamp:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return 0
        doc = await self.pages.find_one({"_id": lo - 1}, projection={"e": 1})
        count = len(doc.get("e") or []) if doc else 0
        for position in range(count):
            if _recorded_at(doc, position) >= stamp:
                return min(size, (lo - 1) * PAGE_SIZE + position)
        return min(size, lo * PAGE_SIZE)

    # --- checkpoints ----------------------------------------------------------------------

    async def save_checkpoint(self, record: CheckpointRecord) -> bool:
        try:
            await self.checkpoints.insert_one(
                {
                    "_id": record.tree_size,
                    "root_hash": record.root_hash,
                    "timestamp": record.timestamp,
                    "note": record.note,
                    "cosignatures": list(record.cosignatures),
                    "cosigners": list(record.cosigners),
                }
            )
        except DuplicateKeyError:
            return False
        await self._point_latest_at(record.tree_size)
        return True

    async def _point_latest_at(self, tree_size: int) -> None:
        await self.cursors.update_one(
            {"_id": LATEST_CHECKPOINT}, {"$max": {"tree_size": tree_size}}, upsert=True
        )

    async def checkpoint(self, tree_size: int) -> CheckpointRecord | None:
        doc = await self.checkpoints.find_one({"_id": tree_size})
        return _checkpoint(doc) if doc else None

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        """The newest signed head, through a pointer: two key lookups, whatever the count.

        (A sort over the checkpoints reads every one of them on the local database: ~200,000
        heads a day at full rate.) A store written before the pointer existed finds its
        newest head once by sorting, and keeps the pointer from then on.
        """
        pointer = await self.cursors.find_one({"_id": LATEST_CHECKPOINT})
        if pointer is not None:
            doc = await self.checkpoints.find_one({"_id": int(pointer["tree_size"])})
        else:
            doc = await self.checkpoints.find_one(sort=[("_id", DESCENDING)])
            if doc is not None:
                await self._point_latest_at(int(doc["_id"]))
        return _checkpoint(doc) if doc else None

    async def add_cosignature(self, tree_size: int, witness: str, line: str) -> bool:
        """Keep a witness's cosignature line with the head (once per witness)."""
        updated = await self.checkpoints.update_one(
            {"_id": tree_size, "cosigners": {"$ne": witness}},
            {"$push": {"cosignatures": line, "cosigners": witness}},
        )
        return updated.modified_count == 1

    async def witness_size(self, witness: str) -> int:
        """The size of the last head this witness cosigned, as far as the log knows (0)."""
        doc = await self.cursors.find_one({"_id": WITNESS_CURSOR + witness})
        return int(doc["size"]) if doc else 0

    async def set_witness_size(self, witness: str, size: int) -> None:
        await self.cursors.update_one(
            {"_id": WITNESS_CURSOR + witness}, {"$set": {"size": size}}, upsert=True
        )

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


def _recorded_at(doc: Mapping[str, Any] | None, position: int) -> str:
    """`recorded_at` of element `position` of a page ("" when absent or unreadable)."""
    texts = doc.get("e") if doc else None
    if not isinstance(texts, list) or position >= len(texts):
        return ""
    try:
        value = parse_entry_document({"e": texts[position]}).get("recorded_at")
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def _v1_row(seq: int, doc: Mapping[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"_id": seq, "e": doc.get("e", "") if doc is not None else ""}
    for name in (*COPY_FIELDS, "producer_seq"):
        row[name] = doc.get(name) if doc is not None else None
    return row


def _checkpoint(doc: Mapping[str, Any]) -> CheckpointRecord:
    return CheckpointRecord(
        int(doc["_id"]),
        doc["root_hash"],
        doc["timestamp"],
        doc["note"],
        tuple(doc.get("cosignatures") or ()),
        tuple(doc.get("cosigners") or ()),
    )


def check_range(seq: int, size: int) -> None:
    if not 0 <= seq < size:
        raise AuditRangeInvalidError(f"seq {seq} is not in the log (size {size})")


__all__ = [
    "PAGE_SIZE",
    "TILE_HEIGHT",
    "AppendPlan",
    "AppendResult",
    "CheckpointRecord",
    "Head",
    "MongoAuditStore",
    "PageExtension",
    "TileWrite",
    "check_range",
    "entry_row",
    "entry_text",
    "expand_page",
    "leaf_nodes",
    "page_of",
    "paginate",
    "parse_entry_document",
    "plan_append",
    "progress_updates",
    "tile_of",
    "tile_writes",
]

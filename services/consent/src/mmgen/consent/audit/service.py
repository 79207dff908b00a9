"""Audit read side: filtered pages, proofs, server-side verification, the Art. 15 subject report.

Every read is bounded (INFRA.md: SecantusDB applies `limit` late, so cost follows matches):
pages scan `_id` windows of the log (the subject and actor filters through their compound
index inside the window), `since`/`until` become a seq range by binary search on the
monotonic `recorded_at`, proofs read O(log n) documents by key, verification streams windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmgen.auditlog.checkpoint import NoteVerifier, open_checkpoint
from mmgen.auditlog.entry import ZERO_HASH, format_timestamp
from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.merkle import TreeAppender
from mmgen.auditlog.verify import LogVerifier, VerificationResult
from mmgen.consent.audit.domain import (
    AuditCheckpointNotFoundError,
    AuditEntryNotFoundError,
    AuditRangeInvalidError,
    AuditRangeTooLargeError,
    AuditVerificationBusyError,
)
from mmgen.consent.audit.store import (
    CheckpointRecord,
    MongoAuditStore,
    parse_entry_document,
)

FILTER_FIELDS = ("subject_id", "actor_id", "action", "event_type", "producer")
INDEXED_FILTERS = ("subject_id", "actor_id")
SCAN_BUDGET = 50_000
"""Largest seq span one page request scans with unindexed filters (then it returns a cursor)."""
INDEXED_SCAN_BUDGET = 2_000_000
REPORT_PAGE = 1_000
REPORT_PAGE_MAX = 5_000
"""Entries of a subject one report page covers (default, largest): a page is bounded."""
VERIFY_MAX_ENTRIES = 100_000
"""Default cap on the entries one `/audit/verify` rechecks (`CONSENT_AUDIT_VERIFY_MAX_ENTRIES`)."""
VERIFY_WINDOW = 4_096
"""Entries read per database round trip of a verification (then checked in a worker thread)."""


@dataclass(frozen=True)
class EntryPage:
    items: list[dict[str, Any]]
    next_seq: int | None


@dataclass(frozen=True)
class ServerVerification:
    """`GET /audit/verify`: the library's result plus node/index cross-checks."""

    result: VerificationResult
    from_seq: int
    to_seq: int

    def to_json(self) -> dict[str, Any]:
        out = self.result.to_json()
        out["from"] = self.from_seq
        out["to"] = self.to_seq
        return out


class AuditQueries:
    """Read-side use cases over a `MongoAuditStore`."""

    def __init__(
        self,
        store: MongoAuditStore,
        verifier: NoteVerifier,
        origin: str,
        *,
        verify_max_entries: int = VERIFY_MAX_ENTRIES,
    ) -> None:
        self.store = store
        self.verifier = verifier
        self.origin = origin
        self.verify_max_entries = verify_max_entries
        # Verification is CPU-bound hashing: one at a time per replica, a second one is told
        # to come back (429) rather than queued behind it holding a connection.
        self._verifying = asyncio.Lock()

    # --- entries --------------------------------------------------------------------------

    async def entry(self, seq: int) -> dict[str, Any]:
        if seq < 0:
            raise AuditRangeInvalidError("seq must be >= 0")
        doc = await self.store.get_document(seq)
        if doc is None:
            raise AuditEntryNotFoundError(f"no entry at seq {seq}")
        return parse_entry_document(doc)

    async def erasure_answer(self, event_id: str) -> dict[str, Any] | None:
        """The entry of a service's `<service>.SubjectErased` event `event_id`, or None (not
        in the log yet, or not such an answer: no other entry is handed out this way)."""
        doc = await self.store.document_of_event(event_id)
        if doc is None or doc["event_type"] != f"{doc['producer']}.SubjectErased":
            return None
        return parse_entry_document(doc)

    async def entries(
        self,
        filters: Mapping[str, str | None],
        *,
        since: datetime | None,
        until: datetime | None,
        start: int,
        limit: int,
    ) -> EntryPage:
        """One page of entries with `seq >= start` matching every given filter, in seq order."""
        head = await self.store.head()
        lo, hi = max(0, start), head.size
        if since is not None:
            lo = max(lo, await self.store.seq_at_time(format_timestamp(since), head.size))
        if until is not None:
            hi = min(hi, await self.store.seq_at_time(format_timestamp(until), head.size))
        wanted = {k: v for k, v in filters.items() if v is not None}
        indexed = any(k in wanted for k in INDEXED_FILTERS)
        budget = INDEXED_SCAN_BUDGET if indexed else SCAN_BUDGET
        window = max(limit * 4, 1_000) if wanted else limit
        items: list[dict[str, Any]] = []
        seq = lo
        scanned = 0
        while seq < hi and len(items) < limit and scanned < budget:
            end = min(hi, seq + window)
            docs = await self.store.window(seq, end, wanted)
            for doc in docs:
                entry = parse_entry_document(doc)
                # The copies used for indexes must agree with the entry itself.
                if all(entry.get(k) == v for k, v in wanted.items()):
                    items.append(entry)
                if len(items) == limit:
                    return EntryPage(items, doc["_id"] + 1 if doc["_id"] + 1 < hi else None)
            scanned += end - seq
            seq = end
            window = min(window * 4, 100_000 if indexed else 20_000)
        return EntryPage(items, seq if seq < hi else None)

    # --- checkpoints and proofs -----------------------------------------------------------

    async def checkpoint(self, tree_size: int | None) -> CheckpointRecord:
        record = (
            await self.store.latest_checkpoint()
            if tree_size is None
            else await self.store.checkpoint(tree_size)
        )
        if record is None:
            raise AuditCheckpointNotFoundError(
                "no signed tree head yet" if tree_size is None else f"no head of size {tree_size}"
            )
        return record

    async def inclusion(self, seq: int, tree_size: int | None) -> dict[str, Any]:
        head = await self.store.head()
        size = head.size if tree_size is None else tree_size
        if not 0 < size <= head.size:
            raise AuditRangeInvalidError(f"tree_size must be in 1..{head.size}")
        if not 0 <= seq < size:
            raise AuditRangeInvalidError(f"seq must be in 0..{size - 1}")
        hashes = await self.store.inclusion_proof(seq, size)
        return {"leaf_index": seq, "tree_size": size, "hashes": [h.hex() for h in hashes]}

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        head = await self.store.head()
        if not 0 <= first <= second <= head.size:
            raise AuditRangeInvalidError(f"need 0 <= first <= second <= {head.size}")
        hashes = [] if first == 0 else await self.store.consistency_proof(first, second)
        return {"first": first, "second": second, "hashes": [h.hex() for h in hashes]}

    # --- verification ---------------------------------------------------------------------

    async def verify(self, from_seq: int | None, to_seq: int | None) -> ServerVerification:
        """Recheck `[from, to]` (inclusive): chain, hashes, stored nodes, index copies, and the
        largest signed head inside the range against the recomputed Merkle root.

        At most `verify_max_entries` entries (else `AuditRangeTooLargeError`, nothing read);
        one verification at a time (else `AuditVerificationBusyError`); the hashing runs in a
        worker thread a window at a time, so the event loop keeps serving meanwhile."""
        head = await self.store.head()
        first = 0 if from_seq is None else from_seq
        last = head.size - 1 if to_seq is None else to_seq
        if head.size == 0 and from_seq is None and to_seq is None:
            return ServerVerification(
                VerificationResult(True, 0, None, None, None, 0, None, None), 0, -1
            )
        if not 0 <= first <= last < head.size:
            raise AuditRangeInvalidError(f"need 0 <= from <= to < {head.size}")
        if last - first + 1 > self.verify_max_entries:
            raise AuditRangeTooLargeError(last - first + 1, self.verify_max_entries)
        if self._verifying.locked():
            raise AuditVerificationBusyError("another verification is running; retry shortly")
        async with self._verifying:
            return await self._verify_range(first, last)

    async def _verify_range(self, first: int, last: int) -> ServerVerification:
        prev_hash = ZERO_HASH
        if first > 0:
            before = await self.store.get_document(first - 1)
            try:
                prev_hash = bytes.fromhex(parse_entry_document(before or {})["hash"])
            except (KeyError, ValueError, TypeError):
                return ServerVerification(
                    VerificationResult(
                        False, 0, first - 1, "entry before the range is unreadable", "malformed"
                    ),
                    first,
                    last,
                )
        try:
            frontier = await self.store.frontier(first)
        except AuditLogError as exc:
            return ServerVerification(
                VerificationResult(
                    False, 0, None, f"Merkle nodes unreadable: {exc}", "node_missing"
                ),
                first,
                last,
            )
        checkpoint = None
        record = await self.store.checkpoint_within(first, last + 1)
        if record is not None:
            try:
                checkpoint = open_checkpoint(record.note, self.verifier, origin=self.origin)
            except AuditLogError as exc:
                return ServerVerification(
                    VerificationResult(False, 0, None, str(exc), "checkpoint_invalid"), first, last
                )
        verifier = LogVerifier(
            start_seq=first, prev_hash=prev_hash, frontier=frontier, checkpoint=checkpoint
        )
        appender = TreeAppender(frontier)
        seq = first
        while seq <= last:
            upto = min(last + 1, seq + VERIFY_WINDOW)
            docs = await self.store.window(seq, upto, with_nodes=True)
            seq, bad, stop = await asyncio.to_thread(_check_window, docs, seq, verifier, appender)
            if bad is not None:
                return ServerVerification(
                    VerificationResult(False, seq - first, seq, bad, "storage_mismatch"),
                    first,
                    last,
                )
            if stop or seq < upto:
                break
        if seq <= last and verifier.ok:
            verifier.fail_unreadable(f"entry {seq} is missing")
        result = verifier.result()
        return ServerVerification(result, first, last)

    # --- Art. 15 --------------------------------------------------------------------------

    async def subject_report(
        self, subject_id: str, *, start: int = 0, limit: int = REPORT_PAGE
    ) -> dict[str, Any]:
        """One page of what the log shows about one subject: purposes, categories,
        recipients, accesses — over the subject's next `limit` entries from seq `start`.

        Recipients are the `share` entries (disclosures): producer, event type, resource (the
        disclosure), purpose and categories. Accesses are `read` entries by someone other than
        the subject; `deny` entries are refusals of access. Contents never appear: the log
        holds none. A subject with more entries than a page is read page by page
        (`next_seq`): no request reads more than `limit` entries of it, and the counts are
        those of the page (a reader adds them up).
        """
        if not 1 <= limit <= REPORT_PAGE_MAX:
            raise AuditRangeInvalidError(f"limit must be between 1 and {REPORT_PAGE_MAX}")
        page = await self.entries(
            {"subject_id": subject_id}, since=None, until=None, start=start, limit=limit
        )
        purposes: dict[str, int] = {}
        categories: dict[str, int] = {}
        producers: dict[str, int] = {}
        recipients: list[dict[str, Any]] = []
        accesses: list[dict[str, Any]] = []
        denials: list[dict[str, Any]] = []
        for entry in page.items:
            if entry.get("purpose"):
                purposes[entry["purpose"]] = purposes.get(entry["purpose"], 0) + 1
            for category in entry.get("categories") or []:
                categories[category] = categories.get(category, 0) + 1
            producers[entry["producer"]] = producers.get(entry["producer"], 0) + 1
            brief = {
                k: entry.get(k)
                for k in (
                    "seq",
                    "occurred_at",
                    "producer",
                    "event_type",
                    "actor_id",
                    "actor_role",
                    "purpose",
                    "resource",
                    "categories",
                )
            }
            if entry["action"] == "share":
                recipients.append(brief)
            elif entry["action"] == "read" and entry.get("actor_id") != subject_id:
                accesses.append(brief)
            elif entry["action"] == "deny":
                denials.append(brief)
        return {
            "subject_id": subject_id,
            "from_seq": start,
            "entries": len(page.items),
            "next_seq": page.next_seq,
            "purposes": [{"purpose": p, "entries": n} for p, n in sorted(purposes.items())],
            "categories": [{"category": c, "entries": n} for c, n in sorted(categories.items())],
            "producers": [{"producer": p, "entries": n} for p, n in sorted(producers.items())],
            "recipients": recipients,
            "accesses": accesses,
            "denials": denials,
        }


def _check_window(
    docs: Sequence[Mapping[str, Any]], seq: int, verifier: LogVerifier, appender: TreeAppender
) -> tuple[int, str | None, bool]:
    """Feed one window of rows from `seq` to the verifier (in a worker thread).

    Returns the next seq, a storage mismatch (with seq at the bad row) and whether to stop
    (the verifier failed, or a row is missing or unreadable)."""
    for doc in docs:
        if doc["_id"] != seq:
            verifier.fail_unreadable(f"entry {seq} is missing")
            return seq, None, True
        try:
            entry = parse_entry_document(doc)
        except ValueError as exc:
            verifier.fail_unreadable(f"entry {seq} is not JSON: {exc}")
            return seq, None, True
        if not verifier.feed(entry):
            return seq, None, True
        bad = _copies_disagree(doc, entry)
        if bad is None:
            bad = _nodes_disagree(doc, appender, verifier)
        if bad is not None:
            return seq, bad, True
        seq += 1
    return seq, None, False


def _copies_disagree(doc: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    for name in (
        "event_id",
        "subject_id",
        "actor_id",
        "action",
        "event_type",
        "producer",
        "producer_seq",
    ):
        if doc.get(name) != entry.get(name):
            return f"seq {doc['_id']}: stored {name} differs from the entry"
    return None


def _nodes_disagree(
    doc: Mapping[str, Any], appender: TreeAppender, verifier: LogVerifier
) -> str | None:
    """The stored Merkle nodes of this leaf must be the ones the verified entry implies."""
    from mmgen.auditlog.entry import entry_bytes
    from mmgen.auditlog.merkle import hash_leaf

    entry = parse_entry_document(doc)
    expected = [node.hash for node in appender.append(hash_leaf(entry_bytes(entry)))]
    stored = [bytes(h) for h in doc.get("n") or []]
    if stored != expected:
        return f"seq {doc['_id']}: stored Merkle nodes differ from the entry's"
    return None

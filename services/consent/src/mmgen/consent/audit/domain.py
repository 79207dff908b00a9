"""Audit log domain: how an event envelope becomes an entry, and per-producer continuity.

Pure code (no I/O). The byte format of entries, the hash chain and the Merkle tree are the
library's (`mmgen.auditlog`); this module decides only what the consent service adds:
- which envelope members feed an entry (ids, action, purpose, categories — never `data`
  nor `pii`: the log holds no contents);
- where Merkle nodes live: with the entry whose append completed them (beside it in its page
  of the store), so an append writes no node documents of its own (half the writes of a node
  collection, measured) and a proof still reads O(log n) documents by primary key;
- per-producer `producer_seq` continuity as a set of disjoint ranges, so out-of-order arrival
  (Kafka partitions) is normal and a hole is named exactly for the republish request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mmgen.auditlog.entry import format_timestamp

AUDIT_PRODUCER = "audit"
"""Producer name of the entries the audit component writes itself (refused audit reads)."""

DENY_EVENT_TYPE = "audit.AccessDenied"


class AuditError(Exception):
    """Root of the consent audit log's errors."""


class AuditEntryNotFoundError(AuditError):
    """No entry at that seq (yet)."""


class AuditCheckpointNotFoundError(AuditError):
    """No signed tree head of that size."""


class AuditRangeInvalidError(AuditError):
    """A requested seq, tree size or range lies outside the log (a 400, nothing read)."""


class AuditRangeTooLargeError(AuditError):
    """A verification range longer than the configured cap (a 422, nothing read)."""

    def __init__(self, requested: int, cap: int) -> None:
        super().__init__(
            f"the range holds {requested} entries; verify at most {cap} per request"
            " (CONSENT_AUDIT_VERIFY_MAX_ENTRIES): split it into ranges with from/to"
        )
        self.requested = requested
        self.cap = cap


class AuditVerificationBusyError(AuditError):
    """Another verification is running on this replica (a 429: one at a time)."""


class AuditEntryRejectedError(AuditError):
    """An event whose header cannot form a valid entry (e.g. an over-long id): dead-lettered."""


class AuditConflictError(AuditError):
    """Another writer advanced the head during this append (the transaction is retried)."""


def entry_fields(envelope: Any) -> dict[str, Any]:
    """The fields of an audit entry taken from an event envelope — its header, never contents.

    `envelope` is an `mmgen.events.envelope.Envelope` (duck-typed to keep this module pure).
    """
    actor = envelope.actor
    resource = envelope.resource
    return {
        "event_id": envelope.event_id,
        "producer": envelope.producer,
        "producer_seq": envelope.producer_seq,
        "event_type": envelope.event_type,
        "action": envelope.action,
        "occurred_at": envelope.occurred_at,
        "subject_id": envelope.subject_id,
        "actor_id": actor.id if actor is not None else None,
        "actor_role": actor.role if actor is not None else None,
        "purpose": envelope.purpose,
        "resource": {"type": resource.type, "id": resource.id} if resource is not None else None,
        "categories": tuple(envelope.categories),
    }


def node_holder(level: int, index: int) -> int:
    """Seq of the entry whose append completed Merkle node `(level, index)`.

    Node `(l, j)` covers leaves `[j·2^l, (j+1)·2^l)`; it is completed by the last of them,
    and it is element `l` of that entry's node list (nodes are listed level 0 upwards).
    """
    return ((index + 1) << level) - 1


def monotonic_recorded_at(now: datetime, last: str | None) -> str:
    """`recorded_at` for the next entry: now, but never before the previous entry's.

    Keeping `recorded_at` non-decreasing in `seq` makes `since`/`until` a seq range found by
    binary search on the primary key (no index on time), even if the clock steps back.
    """
    stamp = format_timestamp(now)
    if last is not None and last > stamp:  # same fixed-width format: string order = time order
        return last
    return stamp


@dataclass
class ProducerProgress:
    """What the log holds of one producer: everything up to `contiguous`, plus `ranges` above.

    `ranges` are disjoint, sorted, inclusive `[first, last]` runs of sequence numbers held
    beyond the first hole. `producer_seq` starts at 1 (the event store's numbering).
    `announced` (the producer's own head, from `events.heads`) and `repair_requests_open` are
    read for deciding when a hole at the tail was repaired; they are kept by their own updates,
    never written back from here.
    """

    producer: str
    contiguous: int = 0
    ranges: list[list[int]] = field(default_factory=list)
    announced: int = 0
    repair_requests_open: int = 0

    def add(self, seqs: Iterable[int]) -> None:
        """Record newly held sequence numbers (duplicates and old numbers are harmless)."""
        runs = [list(r) for r in self.ranges]
        for seq in sorted(set(seqs)):
            if seq <= self.contiguous:
                continue
            runs.append([seq, seq])
        runs.sort()
        merged: list[list[int]] = []
        for first, last in runs:
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        if merged and merged[0][0] <= self.contiguous + 1:
            self.contiguous = max(self.contiguous, merged.pop(0)[1])
        self.ranges = merged

    def holes(self) -> list[tuple[int, int]]:
        """Missing runs `(from_seq, to_seq)` (inclusive) below the highest number held."""
        out: list[tuple[int, int]] = []
        below = self.contiguous
        for first, last in self.ranges:
            out.append((below + 1, first - 1))
            below = last
        return out

    @property
    def highest(self) -> int:
        return self.ranges[-1][1] if self.ranges else self.contiguous

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.holes())

    def to_document(self) -> dict[str, Any]:
        return {"contiguous": self.contiguous, "ranges": self.ranges}

    @classmethod
    def from_document(cls, producer: str, doc: Mapping[str, Any] | None) -> ProducerProgress:
        if doc is None:
            return cls(producer)
        return cls(
            producer,
            int(doc.get("contiguous", 0)),
            [list(r) for r in doc.get("ranges", [])],
            int(doc.get("announced") or 0),
            int(doc.get("repair_requests_open") or 0),
        )

    def repaired_tail(self, after: ProducerProgress) -> bool:
        """Whether `after` fills a hole at this state's tail that a republish request asked for:
        nothing held beyond a hole (no `ranges`), the announced head above what was held, and
        now everything up to that head held. Such a hole never shows as a range, so without
        this its repair would go uncounted."""
        return (
            not self.ranges
            and self.repair_requests_open > 0
            and self.announced > self.contiguous
            and not after.ranges
            and after.contiguous >= self.announced
        )

"""In-memory fakes of every port, for unit tests of the use cases (same behaviour as the
MongoDB adapters, which the integration tests check against the real database)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mmgen.auditlog.receipt import ReceiptCheckpoint
from mmgen.retention.domain.activity import (
    ActivityBatch,
    ResourceActivity,
    SubjectActivity,
    index_entries,
    index_range,
)
from mmgen.retention.domain.contract import AuditRecord, Purpose, SubjectErasedReport
from mmgen.retention.domain.credentials import SignInCredentials
from mmgen.retention.domain.errors import SecondFactorNeededError, ServiceUnreachableError
from mmgen.retention.domain.evaluation import IssuedKey
from mmgen.retention.domain.holds import HoldView
from mmgen.retention.domain.policies import RetentionPolicy
from mmgen.retention.domain.records import (
    Candidate,
    CandidateKind,
    Command,
    Evidence,
    IssuedOrder,
    StoredPackage,
)
from mmgen.runtime.contract import Footprint, SubjectExport


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def _overdue(view: Mapping[str, Any], at: datetime) -> bool:
    due_by = view.get("due_by")
    return (
        bool(view.get("open"))
        and view.get("answered_at") is None
        and due_by is not None
        and (at >= due_by)
    )


class InMemoryRequestViews:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.claims: dict[tuple[str, str], str] = {}

    async def claim_open(self, subject_id: str, request_type: str, request_id: str) -> str:
        return self.claims.setdefault((subject_id, request_type), request_id)

    async def release_claim(self, subject_id: str, request_type: str, request_id: str) -> None:
        if self.claims.get((subject_id, request_type)) == request_id:
            del self.claims[(subject_id, request_type)]

    async def put(self, view: Mapping[str, Any]) -> None:
        current = self.docs.get(view["_id"])
        if current is None or current["version"] < view["version"]:
            doc = copy.deepcopy(dict(view))
            doc["progress"] = (current or {}).get("progress", [])
            self.docs[view["_id"]] = doc

    async def set_progress(self, request_id: str, progress: Sequence[Mapping[str, Any]]) -> None:
        if request_id in self.docs:
            self.docs[request_id]["progress"] = copy.deepcopy(list(progress))

    async def get(self, request_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(request_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def open_for(self, subject_id: str, request_type: str) -> dict[str, Any] | None:
        for doc in sorted(self.docs.values(), key=lambda d: d["_id"]):
            if doc["subject_id"] == subject_id and doc["type"] == request_type and doc["open"]:
                return copy.deepcopy(doc)
        return None

    async def of_subject(self, subject_id: str, limit: int) -> list[dict[str, Any]]:
        found = [d for d in self.docs.values() if d["subject_id"] == subject_id]
        return [copy.deepcopy(d) for d in sorted(found, key=lambda d: d["_id"])[:limit]]

    async def erasure_subjects(self, subject_ids: Sequence[str]) -> set[str]:
        wanted = set(subject_ids)
        return {
            d["subject_id"]
            for d in self.docs.values()
            if d["subject_id"] in wanted
            and d["type"] == "erasure"
            and (d["open"] or d["status"] == "verified")
        }

    async def page(
        self, *, status: str | None, overdue_at: datetime | None, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        out = []
        for doc in sorted(self.docs.values(), key=lambda d: d["_id"]):
            if after is not None and doc["_id"] <= after:
                continue
            if status is not None and doc["status"] != status:
                continue
            if overdue_at is not None and not _overdue(doc, overdue_at):
                continue
            out.append(copy.deepcopy(doc))
            if len(out) >= limit:
                break
        return out

    async def open_ids(self, *, limit: int, after: str | None) -> list[str]:
        ids = sorted(d["_id"] for d in self.docs.values() if d["open"])
        return [i for i in ids if after is None or i > after][:limit]

    async def count_overdue(self, at: datetime) -> int:
        return sum(1 for d in self.docs.values() if _overdue(d, at))

    async def nearest_due(self) -> datetime | None:
        pending = [
            d["due_by"]
            for d in self.docs.values()
            if d.get("open") and d.get("answered_at") is None and d.get("due_by") is not None
        ]
        return min(pending, default=None)


class InMemoryHoldViews:
    def __init__(self) -> None:
        self.holds: dict[str, HoldView] = {}

    async def put(self, hold: HoldView) -> None:
        self.holds[hold.hold_id] = hold

    async def get(self, hold_id: str) -> HoldView | None:
        return self.holds.get(hold_id)

    async def of_subjects(self, subject_ids: Sequence[str]) -> dict[str, list[HoldView]]:
        out: dict[str, list[HoldView]] = {}
        for hold in sorted(self.holds.values(), key=lambda h: h.hold_id):
            if hold.subject_id in subject_ids and hold.released_at is None:
                out.setdefault(hold.subject_id, []).append(hold)
        return out

    async def ended(self, now: datetime, limit: int) -> list[HoldView]:
        ended = [
            h
            for h in self.holds.values()
            if h.released_at is None and h.until is not None and h.until <= now
        ]
        return sorted(ended, key=lambda h: h.hold_id)[:limit]

    async def page(self, *, limit: int, after: str | None) -> list[HoldView]:
        ids = sorted(i for i in self.holds if after is None or i > after)
        return [self.holds[i] for i in ids[:limit]]


class InMemoryPolicyStore:
    def __init__(self) -> None:
        self.policies: dict[str, RetentionPolicy] = {}

    async def put(self, policy: RetentionPolicy) -> None:
        self.policies[policy.policy_id] = policy

    async def all(self) -> list[RetentionPolicy]:
        return sorted(self.policies.values(), key=lambda p: (p.category, p.trigger_event))


class InMemoryActivityStore:
    def __init__(self) -> None:
        self.subjects: dict[str, SubjectActivity] = {}
        self.resources: dict[str, ResourceActivity] = {}
        self.index: dict[str, tuple[str, datetime]] = {}
        self.cursors: dict[str, str | None] = {}
        self._next_seq = 0

    async def next_seq(self) -> int:
        return self._next_seq

    async def load(
        self, subject_ids: Sequence[str], resource_keys: Sequence[str]
    ) -> tuple[dict[str, SubjectActivity], dict[str, ResourceActivity]]:
        return (
            {k: self.subjects[k] for k in subject_ids if k in self.subjects},
            {k: self.resources[k] for k in resource_keys if k in self.resources},
        )

    async def save(self, batch: ActivityBatch) -> None:
        for subject in batch.subjects.values():
            self.index.update(index_entries(subject))
        for resource in batch.resources.values():
            self.index.update(index_entries(resource))
        self.subjects.update(batch.subjects)
        self.resources.update(batch.resources)
        self._next_seq = max(self._next_seq, batch.last_seq + 1)

    async def subject(self, subject_id: str) -> SubjectActivity | None:
        return self.subjects.get(subject_id)

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
        keys = sorted(
            (key, at, entry_id)
            for entry_id, (key, at) in self.index.items()
            if lower < key <= upper
        )[:limit]
        out = []
        for key, at, entry_id in keys:
            target = entry_id.split("|", 2)[2]
            if kind == "subject":
                out.append(Candidate(key, at, subject=self.subjects[target]))
            else:
                out.append(Candidate(key, at, resource=self.resources[target]))
        return out

    async def cursor(self, name: str) -> str | None:
        return self.cursors.get(name)

    async def set_cursor(self, name: str, position: str | None) -> None:
        self.cursors[name] = position

    async def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class InMemoryOrderLog:
    def __init__(self) -> None:
        self.orders: list[IssuedOrder] = []
        self.keys: set[IssuedKey] = set()

    async def issued(self, keys: Sequence[IssuedKey]) -> set[IssuedKey]:
        return {k for k in keys if k in self.keys}

    async def record(self, orders: Sequence[IssuedOrder]) -> None:
        for order in orders:
            self.orders.append(order)
            self.keys.update(order.keys)


class InMemoryPackageStore:
    def __init__(self) -> None:
        self.packages: dict[str, StoredPackage] = {}

    async def put(self, package: StoredPackage) -> None:
        self.packages[package.package_id] = package

    async def get(self, package_id: str) -> StoredPackage | None:
        return self.packages.get(package_id)

    async def delete_expired(self, now: datetime) -> int:
        gone = [k for k, p in self.packages.items() if p.expires_at <= now]
        for key in gone:
            del self.packages[key]
        return len(gone)

    async def delete_subject(self, subject_id: str) -> int:
        gone = [k for k, p in self.packages.items() if p.subject_id == subject_id]
        for key in gone:
            del self.packages[key]
        return len(gone)

    async def count_subject(self, subject_id: str) -> int:
        return sum(1 for p in self.packages.values() if p.subject_id == subject_id)


class InMemoryEvidenceStore:
    def __init__(self) -> None:
        self.items: dict[str, Evidence] = {}

    async def add_report(self, report: SubjectErasedReport) -> Evidence:
        current = self.items.get(report.event_id) or Evidence(
            report.event_id, report.service, report.subject_id
        )
        merged = replace(current, report=report)
        self.items[report.event_id] = merged
        return merged

    async def add_audit(self, record: AuditRecord) -> Evidence:
        current = self.items.get(record.event_id) or Evidence(
            record.event_id, record.producer, record.subject_id or ""
        )
        merged = replace(current, audit_seq=record.seq, recorded_at=record.occurred_at)
        self.items[record.event_id] = merged
        return merged

    async def for_subject(self, subject_id: str, limit: int) -> list[Evidence]:
        found = [e for e in self.items.values() if e.subject_id == subject_id]
        return sorted(found, key=lambda e: e.event_id)[:limit]


class InMemoryCommandPublisher:
    def __init__(self) -> None:
        self.sent: list[Command] = []

    async def publish(self, command: Command) -> None:
        self.sent.append(command)


class InMemoryServiceDirectory:
    """Services answering from dicts; a service in `down` raises `ServiceUnreachableError`."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        purposes: Sequence[Purpose] = (),
    ) -> None:
        self.names = tuple(names)
        self.exports: dict[tuple[str, str], SubjectExport] = {}
        self.footprints: dict[tuple[str, str], Footprint] = {}
        self.catalogue = list(purposes)
        self.down: set[str] = set()
        self.calls: list[tuple[str, str, str]] = []

    def services(self) -> tuple[str, ...]:
        return self.names

    def _check(self, service: str) -> None:
        if service in self.down or service not in self.names:
            raise ServiceUnreachableError(service, "connection refused")

    async def export(self, service: str, subject_id: str) -> SubjectExport:
        self.calls.append(("export", service, subject_id))
        self._check(service)
        found = self.exports.get((service, subject_id))
        return found or SubjectExport(
            service=service, subject_id=subject_id, generated_at=datetime.now(UTC), erased=False
        )

    async def footprint(self, service: str, subject_id: str) -> Footprint:
        self.calls.append(("footprint", service, subject_id))
        self._check(service)
        found = self.footprints.get((service, subject_id))
        return found or Footprint.of(service, subject_id, key_erased=True, records={}, readable={})

    async def purposes(self) -> list[Purpose]:
        return list(self.catalogue)


class InMemoryPasswordCheck:
    """Credentials → the access token identity would issue for them.

    `second_factors` plays an account with TOTP: email → the codes that sign it in (each once,
    as identity accepts a code or a recovery code only once); without one the password alone
    raises `SecondFactorNeededError`, like identity's 401 `mfa_required`."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], str] = {}
        self.second_factors: dict[str, set[str]] = {}
        self.calls = 0

    async def access_token(self, credentials: SignInCredentials) -> str | None:
        self.calls += 1
        token = self.accounts.get((credentials.email, credentials.password))
        codes = self.second_factors.get(credentials.email)
        if token is None or codes is None:
            return token
        given = credentials.totp or credentials.recovery_code
        if given is None:
            raise SecondFactorNeededError("the account signs in with a one-time code")
        if given not in codes:
            return None
        codes.discard(given)
        return token


class InMemoryAuditLogHeads:
    def __init__(self, checkpoint: ReceiptCheckpoint | None = None) -> None:
        self.checkpoint = checkpoint

    async def latest(self) -> ReceiptCheckpoint:
        if self.checkpoint is None:
            raise ServiceUnreachableError("consent", "no signed head yet")
        return self.checkpoint


class InMemoryAuditLogAnswers:
    """Entries handed out by event id, as the log would once it holds them (`calls`: the ids
    asked for, in order)."""

    def __init__(self) -> None:
        self.entries: dict[str, AuditRecord] = {}
        self.calls: list[str] = []

    async def entry(self, event_id: str) -> AuditRecord | None:
        self.calls.append(event_id)
        return self.entries.get(event_id)


__all__ = [
    "FixedClock",
    "InMemoryActivityStore",
    "InMemoryAuditLogAnswers",
    "InMemoryAuditLogHeads",
    "InMemoryCommandPublisher",
    "InMemoryEvidenceStore",
    "InMemoryHoldViews",
    "InMemoryOrderLog",
    "InMemoryPackageStore",
    "InMemoryPasswordCheck",
    "InMemoryPolicyStore",
    "InMemoryRequestViews",
    "InMemoryServiceDirectory",
]

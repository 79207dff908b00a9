"""Ports the use cases depend on: read models, stores, the other services, the command channel.

Each has an `InMemory*` fake (`adapters/memory.py`) and a real adapter (`adapters/mongo.py`,
`adapters/directory.py`); the runtime implements `CommandPublisher` (signed commands on
`retention.commands`). Reads are bounded: by key, by a list of keys, or a page of at most
`limit` items from a cursor position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from mmgen.auditlog.receipt import ReceiptCheckpoint
from mmgen.retention.domain.activity import ActivityBatch, ResourceActivity, SubjectActivity
from mmgen.retention.domain.contract import AuditRecord, Purpose, SubjectErasedReport
from mmgen.retention.domain.credentials import SignInCredentials
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


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RequestViews(Protocol):
    """Read model of privacy requests (one document per request, as `PrivacyRequest.view()`)."""

    async def claim_open(self, subject_id: str, request_type: str, request_id: str) -> str:
        """Make `request_id` the subject's one open request of this type, unless another one
        is already: returns the id that holds the claim."""
        ...

    async def release_claim(self, subject_id: str, request_type: str, request_id: str) -> None:
        """The request ended: a new one of its type may be made."""
        ...

    async def put(self, view: Mapping[str, Any]) -> None:
        """Store the view unless a newer version is stored already (keeps `progress`)."""
        ...

    async def set_progress(self, request_id: str, progress: Sequence[Mapping[str, Any]]) -> None:
        """Per-service erasure or collection progress, as last assessed."""
        ...

    async def get(self, request_id: str) -> dict[str, Any] | None: ...

    async def open_for(self, subject_id: str, request_type: str) -> dict[str, Any] | None:
        """The subject's open request of this type, if any (at most one exists)."""
        ...

    async def of_subject(self, subject_id: str, limit: int) -> list[dict[str, Any]]:
        """The subject's requests (a subject has a handful), by id order."""
        ...

    async def erasure_subjects(self, subject_ids: Sequence[str]) -> set[str]:
        """Those of the subjects with an erasure request that is open or verified."""
        ...

    async def page(
        self,
        *,
        status: str | None,
        overdue_at: datetime | None,
        limit: int,
        after: str | None,
    ) -> list[dict[str, Any]]:
        """Requests by id order after `after`; `overdue_at`: only those unanswered and past
        their deadline at that time."""
        ...

    async def open_ids(self, *, limit: int, after: str | None) -> list[str]:
        """Ids of open requests (scheduler passes), by id order."""
        ...

    async def count_overdue(self, at: datetime) -> int:
        """Open requests unanswered past their deadline at `at` (the overdue metric)."""
        ...

    async def nearest_due(self) -> datetime | None:
        """The earliest deadline of the open, unanswered requests (None: there is none)."""
        ...


class HoldViews(Protocol):
    async def put(self, hold: HoldView) -> None: ...

    async def get(self, hold_id: str) -> HoldView | None: ...

    async def of_subjects(self, subject_ids: Sequence[str]) -> dict[str, list[HoldView]]:
        """Unreleased holds of each subject (a hold past its `until` included)."""
        ...

    async def ended(self, now: datetime, limit: int) -> list[HoldView]:
        """Unreleased holds whose `until` has passed."""
        ...

    async def page(self, *, limit: int, after: str | None) -> list[HoldView]: ...


class PolicyStore(Protocol):
    async def put(self, policy: RetentionPolicy) -> None:
        """Store (or replace, by `policy_id`) a policy."""
        ...

    async def all(self) -> list[RetentionPolicy]:
        """Every policy (a small set, read whole)."""
        ...


class ActivityStore(Protocol):
    """The activity projection: states by key, a trigger index, and its progress in the log."""

    async def next_seq(self) -> int:
        """The first audit seq not yet applied."""
        ...

    async def load(
        self, subject_ids: Sequence[str], resource_keys: Sequence[str]
    ) -> tuple[dict[str, SubjectActivity], dict[str, ResourceActivity]]: ...

    async def save(self, batch: ActivityBatch) -> None:
        """Write the changed states, their trigger index entries, and `next_seq`."""
        ...

    async def subject(self, subject_id: str) -> SubjectActivity | None: ...

    async def candidates(
        self,
        kind: CandidateKind,
        trigger_event: str,
        *,
        until: datetime,
        after: str | None,
        limit: int,
    ) -> list[Candidate]:
        """Targets whose last `trigger_event` happened at or before `until`, in trigger-index
        order after the position `after` (a `Candidate.key`)."""
        ...

    async def cursor(self, name: str) -> str | None: ...

    async def set_cursor(self, name: str, position: str | None) -> None: ...

    async def reset(self) -> None:
        """Forget everything (a rebuild from the log follows)."""
        ...


class OrderLog(Protocol):
    async def issued(self, keys: Sequence[IssuedKey]) -> set[IssuedKey]:
        """Those of the keys already ordered."""
        ...

    async def record(self, orders: Sequence[IssuedOrder]) -> None: ...


class PackageStore(Protocol):
    async def put(self, package: StoredPackage) -> None: ...

    async def get(self, package_id: str) -> StoredPackage | None: ...

    async def delete_expired(self, now: datetime) -> int: ...

    async def delete_subject(self, subject_id: str) -> int: ...

    async def count_subject(self, subject_id: str) -> int: ...


class EvidenceStore(Protocol):
    async def add_report(self, report: SubjectErasedReport) -> Evidence:
        """Merge a report into its evidence (idempotent); returns the merged evidence."""
        ...

    async def add_audit(self, record: AuditRecord) -> Evidence:
        """Merge an audit entry of a `SubjectErased` into its evidence (idempotent)."""
        ...

    async def for_subject(self, subject_id: str, limit: int) -> list[Evidence]:
        """The subject's evidence (a subject has a handful: one per service and order)."""
        ...


class CommandPublisher(Protocol):
    """Sends commands to every service; a command sent again with the same id is the same
    command (services act on it once)."""

    async def publish(self, command: Command) -> None: ...


class ServiceDirectory(Protocol):
    """The other services' `/internal/subjects/{id}/export|footprint`, and the purposes."""

    def services(self) -> tuple[str, ...]: ...

    async def export(self, service: str, subject_id: str) -> SubjectExport: ...

    async def footprint(self, service: str, subject_id: str) -> Footprint: ...

    async def purposes(self) -> list[Purpose]: ...


class PasswordCheck(Protocol):
    """Signs a subject in again (identity): the access token it issues, or None if refused.

    Raises `SecondFactorNeededError` when the password is right but the account needs a
    one-time code that was not given (a wrong code is a refusal like a wrong password)."""

    async def access_token(self, credentials: SignInCredentials) -> str | None: ...


class AuditLogHeads(Protocol):
    """The audit log's latest signed head (for receipts)."""

    async def latest(self) -> ReceiptCheckpoint: ...


class AuditLogAnswers(Protocol):
    """The audit log's entry of a service's `<service>.SubjectErased`, by the event's id."""

    async def entry(self, event_id: str) -> AuditRecord | None:
        """The entry, waiting a little for the log to take the answer in; None when it has
        not (the `audit.log` feed brings it later). Raises `ServiceUnreachableError`."""
        ...

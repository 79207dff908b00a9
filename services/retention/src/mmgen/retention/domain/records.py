"""Records the use cases and adapters exchange: candidates, issued orders, packages, evidence,
commands. Plain data, shared by the ports (service layer) and their adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from mmgen.events.envelope import PiiBlob
from mmgen.retention.domain.activity import ResourceActivity, SubjectActivity
from mmgen.retention.domain.contract import SubjectErasedReport
from mmgen.retention.domain.evaluation import IssuedKey

CandidateKind = Literal["subject", "resource"]


@dataclass(frozen=True)
class Candidate:
    """A target whose trigger happened at `at`, found through the trigger index."""

    key: str
    at: datetime
    subject: SubjectActivity | None = None
    resource: ResourceActivity | None = None


@dataclass(frozen=True)
class IssuedOrder:
    """An order a policy run sent, remembered so it is sent once."""

    keys: tuple[IssuedKey, ...]
    command_id: str
    run_id: str
    issued_at: datetime


@dataclass(frozen=True)
class StoredPackage:
    package_id: str
    request_id: str
    subject_id: str
    requested_by: str
    blob: PiiBlob
    created_at: datetime
    expires_at: datetime


@dataclass
class Evidence:
    """What is known of one `<service>.SubjectErased`: its data (from the service's topic) and
    its audit-log position (from `audit.log`), joined by event id, whichever came first."""

    event_id: str
    service: str
    subject_id: str
    report: SubjectErasedReport | None = None
    audit_seq: int | None = None
    recorded_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.report is not None and self.audit_seq is not None


@dataclass(frozen=True)
class Command:
    """A command for `retention.commands` (the envelope's `event_type`, id and `data`)."""

    event_type: Literal["retention.EraseSubject", "retention.AnonymizeResource"]
    command_id: str
    subject_id: str | None
    data: dict[str, Any]
    correlation_id: str

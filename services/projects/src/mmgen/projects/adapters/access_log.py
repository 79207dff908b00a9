"""The `AccessLog` port: what the use cases hand over for the audit log, reads and refusals.

The use cases decide what to record — which categories and fields of whose data were read,
for which purpose, through which route, about which project; or which request was refused and
why. `TrailAccessLog` turns an `AccessRecord` into the standard `projects.DataAccessed` event
and a `DenialRecord` into `projects.AccessDenied` through the runtime's audit trail, appended
to the event store like any event, so they reach the audit log. Neither record ever holds a
personal value or a raw path: routes are templates (`/projects/{project_id}/messages`),
targets are validated ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mmgen.events.envelope import Actor
from mmgen.runtime.trail import AuditTrail

#: The target type a project's refusals name.
TARGET_PROJECT = "project"


@dataclass(frozen=True)
class AccessRecord:
    """A successful read of personal data."""

    actor_id: str
    actor_role: str
    purpose: str
    route: str
    operation: str
    #: The project read from; None for a list across the caller's projects.
    project_id: str | None
    #: What was read: `("project", id)`, `("project_messages", project id)`,
    #: `("project_files", project id)`, `("file", file id)`, `("project_list", caller id)`.
    resource_type: str
    resource_id: str
    categories: tuple[str, ...]
    #: Whose personal data the read returned (owner, authors, uploaders), deduplicated.
    subject_ids: tuple[str, ...]
    #: How many records the read returned (messages or files on a page; 1 for one item).
    records: int
    #: The personal fields read (`title`, `requirements`, `text`, `filename`, `content`).
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class DenialRecord:
    """A refused request: who, where (route template), about which project, and why."""

    actor_id: str
    actor_role: str
    declared_purpose: str | None
    route: str
    operation: str
    project_id: str | None
    reason: str
    status: int
    method: str = "GET"


class AccessLog(Protocol):
    async def record_access(self, record: AccessRecord) -> None: ...

    async def record_denial(self, record: DenialRecord) -> None: ...


class InMemoryAccessLog:
    """Keeps the records in lists (unit tests)."""

    def __init__(self) -> None:
        self.accesses: list[AccessRecord] = []
        self.denials: list[DenialRecord] = []

    async def record_access(self, record: AccessRecord) -> None:
        self.accesses.append(record)

    async def record_denial(self, record: DenialRecord) -> None:
        self.denials.append(record)


class TrailAccessLog:
    """The audit log's door: each record becomes one standard event of the service's store.

    A read names one subject on its envelope when it returned one subject's data (a project's
    texts, a file); a page mixing several people's messages names none there — its categories,
    fields, purpose and project say what was read, and by whom.
    """

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def record_access(self, record: AccessRecord) -> None:
        subjects = record.subject_ids
        await self.trail.accessed(
            Actor(id=record.actor_id, role=record.actor_role),
            route=record.route,
            resource_type=record.resource_type,
            resource_id=record.resource_id,
            categories=record.categories,
            purpose=record.purpose,
            subject_id=subjects[0] if len(subjects) == 1 else None,
            fields=record.fields,
            records=record.records,
        )

    async def record_denial(self, record: DenialRecord) -> None:
        await self.trail.denied(
            Actor(id=record.actor_id, role=record.actor_role),
            code=record.reason,
            status=record.status,
            method=record.method,
            route=record.route,
            purpose=record.declared_purpose,
            target_type=TARGET_PROJECT if record.project_id else None,
            target_id=record.project_id,
        )


class NullAccessLog:
    """Records nothing: only for the benchmark that prices the access events (never wired by
    `bootstrap` unless passed in)."""

    async def record_access(self, record: AccessRecord) -> None:
        return None

    async def record_denial(self, record: DenialRecord) -> None:
        return None

"""The `AccessLog` port: what the use cases hand over for the audit log, reads and refusals.

The use cases decide what to record — which categories of whose data were read, for which
purpose, through which route, about which project; or which request was refused and why. The
runtime's adapter turns an `AccessRecord` into the standard `projects.DataAccessed` event and
a `DenialRecord` into `projects.AccessDenied`, appended to the event store like any event, so
they reach the audit log. Neither record ever holds a personal value or a raw path: routes
are templates (`/projects/{project_id}/messages`), targets are validated ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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

"""What the use cases return: plain values, personal ones `None` where erased."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from mmgen.projects.adapters.access_log import AccessRecord
from mmgen.projects.adapters.ports import ProjectRow
from mmgen.projects.domain.events import Recipient
from mmgen.projects.domain.model import Project

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page; `next_position` is where the next one starts (the edge makes it a cursor)."""

    items: list[T]
    next_position: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Read(Generic[T]):
    """A read's result and the access event recorded for it."""

    value: T
    access: AccessRecord


@dataclass(frozen=True)
class Member:
    user_id: str
    role: str


@dataclass(frozen=True)
class ProjectFacts:
    """A project without personal values: what every write answers with."""

    project_id: str
    owner_id: str
    status: str
    budget_band: str | None
    deadline: date | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    members: list[Member]
    anonymized: bool
    version: int

    @classmethod
    def of(cls, project: Project | ProjectRow) -> ProjectFacts:
        created = project.created_at
        updated = project.updated_at
        changed = project.status_changed_at
        assert created is not None and updated is not None and changed is not None
        return cls(
            project_id=project.project_id if isinstance(project, ProjectRow) else project.id,
            owner_id=project.owner_id,
            status=project.status,
            budget_band=project.budget_band,
            deadline=project.deadline,
            created_at=created,
            updated_at=updated,
            status_changed_at=changed,
            members=[Member(u, r) for u, r in sorted(project.members.items())],
            anonymized=project.anonymized,
            version=project.version,
        )


@dataclass(frozen=True)
class ProjectView:
    """A project with its title and requirements (`None` once anonymised)."""

    facts: ProjectFacts
    title: str | None
    requirements: str | None


@dataclass(frozen=True)
class ProjectChange:
    """What a correction changed, and the project's facts after it."""

    facts: ProjectFacts
    changed: list[str]


@dataclass(frozen=True)
class ProjectSummary:
    """A line of "my projects": the title, the facts, and the caller's relation to it."""

    project_id: str
    title: str | None
    status: str
    budget_band: str | None
    deadline: date | None
    created_at: datetime
    updated_at: datetime
    relation: str
    anonymized: bool


@dataclass(frozen=True)
class MessageView:
    message_id: str
    project_id: str
    number: int
    author_id: str | None
    posted_at: datetime
    text: str | None
    erased: bool = False


@dataclass(frozen=True)
class FileView:
    file_id: str
    project_id: str
    uploader_id: str | None
    filename: str | None
    content_type: str
    size: int
    uploaded_at: datetime
    erased: bool = False


@dataclass(frozen=True)
class Download:
    """A file to stream: its facts and its decrypted content, chunk by chunk."""

    file: FileView
    content: AsyncIterator[bytes] = field(repr=False)


@dataclass(frozen=True)
class DisclosureView:
    disclosure_id: str
    project_id: str
    recipient: Recipient
    purpose: str
    legal_basis: str
    categories: list[str]
    subject_ids: list[str]
    disclosed_at: datetime

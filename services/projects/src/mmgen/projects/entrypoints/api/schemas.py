"""Request and response bodies of the projects API, with their limits.

Requests refuse unknown fields (nobody sets an owner, a status or a member list through a
create or a correction). A disclosure's `purpose` is free text on purpose: any purpose that
is not one the policy permits must reach the use case, which refuses it with its own problem
type and audits the refusal — a schema enum would turn it into an unaudited validation error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmgen.platform.pagination import CursorPage, encode_cursor
from mmgen.projects.domain.events import (
    BudgetBand,
    LegalBasis,
    MemberRole,
    ProjectStatus,
    Recipient,
)
from mmgen.projects.domain.model import UNSET
from mmgen.projects.service_layer.views import (
    DisclosureView,
    FileView,
    MessageView,
    Page,
    ProjectChange,
    ProjectFacts,
    ProjectSummary,
    ProjectView,
)

TITLE_MAX = 200
REQUIREMENTS_MAX = 20_000
MESSAGE_MAX = 10_000
DISCLOSURE_SUBJECTS_MAX = 100
PURPOSE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DisclosableCategory = Literal["contact", "business", "project", "communication", "files", "payment"]

T = TypeVar("T")
V = TypeVar("V")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- requests -----------------------------------------------------------------------------------


class ProjectIn(_In):
    """`POST /projects`."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    requirements: str = Field(min_length=1, max_length=REQUIREMENTS_MAX)
    budget: BudgetBand | None = Field(default=None, description="Budget band")
    deadline: date | None = None


class ProjectPatchIn(_In):
    """`PATCH /projects/{project_id}`: only the fields present change; `budget` and
    `deadline` may be set to null to clear them, `title` and `requirements` may not."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    requirements: str | None = Field(default=None, min_length=1, max_length=REQUIREMENTS_MAX)
    budget: BudgetBand | None = None
    deadline: date | None = None

    @model_validator(mode="after")
    def _meaningful(self) -> ProjectPatchIn:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        for name in ("title", "requirements"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed, only corrected")
        return self

    def changes(self) -> dict[str, Any]:
        """Keyword arguments of `ProjectUseCases.update` (absent fields left `UNSET`)."""
        given = self.model_fields_set
        return {
            "title": self.title if "title" in given else UNSET,
            "requirements": self.requirements if "requirements" in given else UNSET,
            "budget_band": self.budget if "budget" in given else UNSET,
            "deadline": self.deadline if "deadline" in given else UNSET,
        }


class StatusIn(_In):
    """`POST /projects/{project_id}/status`."""

    status: ProjectStatus


class MemberIn(_In):
    """`POST /projects/{project_id}/members`."""

    user_id: uuid.UUID
    role: MemberRole


class MessageIn(_In):
    """`POST /projects/{project_id}/messages`."""

    text: str = Field(min_length=1, max_length=MESSAGE_MAX)


class DisclosureIn(_In):
    """`POST /projects/{project_id}/disclosures`."""

    recipient: Recipient
    purpose: str = Field(pattern=PURPOSE_PATTERN)
    legal_basis: LegalBasis
    categories: list[DisclosableCategory] = Field(min_length=1, max_length=6)
    subject_ids: list[uuid.UUID] = Field(min_length=1, max_length=DISCLOSURE_SUBJECTS_MAX)


# --- responses ----------------------------------------------------------------------------------


class MemberOut(BaseModel):
    user_id: str
    role: str


class ProjectFactsOut(BaseModel):
    """A project without its texts: what status and member changes answer with."""

    project_id: str
    owner_id: str
    status: str
    budget: str | None
    deadline: date | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    members: list[MemberOut]
    anonymized: bool

    @classmethod
    def of(cls, facts: ProjectFacts) -> ProjectFactsOut:
        return cls(
            project_id=facts.project_id,
            owner_id=facts.owner_id,
            status=facts.status,
            budget=facts.budget_band,
            deadline=facts.deadline,
            created_at=facts.created_at,
            updated_at=facts.updated_at,
            status_changed_at=facts.status_changed_at,
            members=[MemberOut(user_id=m.user_id, role=m.role) for m in facts.members],
            anonymized=facts.anonymized,
        )


class ProjectOut(ProjectFactsOut):
    """A project with its title and requirements (null once anonymised)."""

    title: str | None
    requirements: str | None

    @classmethod
    def of_view(cls, view: ProjectView) -> ProjectOut:
        return cls(
            **ProjectFactsOut.of(view.facts).model_dump(),
            title=view.title,
            requirements=view.requirements,
        )


class ProjectChangeOut(ProjectFactsOut):
    changed: list[str]

    @classmethod
    def of_change(cls, change: ProjectChange) -> ProjectChangeOut:
        return cls(**ProjectFactsOut.of(change.facts).model_dump(), changed=change.changed)


class ProjectSummaryOut(BaseModel):
    project_id: str
    title: str | None
    status: str
    budget: str | None
    deadline: date | None
    created_at: datetime
    updated_at: datetime
    relation: str
    anonymized: bool

    @classmethod
    def of(cls, summary: ProjectSummary) -> ProjectSummaryOut:
        return cls(
            project_id=summary.project_id,
            title=summary.title,
            status=summary.status,
            budget=summary.budget_band,
            deadline=summary.deadline,
            created_at=summary.created_at,
            updated_at=summary.updated_at,
            relation=summary.relation,
            anonymized=summary.anonymized,
        )


class MessageOut(BaseModel):
    message_id: str
    number: int
    author_id: str | None
    posted_at: datetime
    text: str | None
    erased: bool

    @classmethod
    def of(cls, view: MessageView) -> MessageOut:
        return cls(
            message_id=view.message_id,
            number=view.number,
            author_id=view.author_id,
            posted_at=view.posted_at,
            text=view.text,
            erased=view.erased,
        )


class FileOut(BaseModel):
    file_id: str
    uploader_id: str | None
    filename: str | None
    content_type: str
    size: int
    uploaded_at: datetime
    erased: bool

    @classmethod
    def of(cls, view: FileView) -> FileOut:
        return cls(
            file_id=view.file_id,
            uploader_id=view.uploader_id,
            filename=view.filename,
            content_type=view.content_type,
            size=view.size,
            uploaded_at=view.uploaded_at,
            erased=view.erased,
        )


class DisclosureOut(BaseModel):
    disclosure_id: str
    project_id: str
    recipient: Recipient
    purpose: str
    legal_basis: str
    categories: list[str]
    subject_ids: list[str]
    disclosed_at: datetime

    @classmethod
    def of(cls, view: DisclosureView) -> DisclosureOut:
        return cls(
            disclosure_id=view.disclosure_id,
            project_id=view.project_id,
            recipient=view.recipient,
            purpose=view.purpose,
            legal_basis=view.legal_basis,
            categories=view.categories,
            subject_ids=view.subject_ids,
            disclosed_at=view.disclosed_at,
        )


def page_out(page: Page[V], convert: Callable[[V], T]) -> CursorPage[T]:
    """`{items, next_cursor}` from a use case's page (its position becomes the cursor)."""
    position: Mapping[str, Any] | None = page.next_position
    return CursorPage[T](
        items=[convert(item) for item in page.items],
        next_cursor=encode_cursor(position) if position is not None else None,
    )

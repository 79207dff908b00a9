"""Events of the projects service (`projects.*` on `projects.events`) and their registry.

Public `data` holds ids, enums, counts and dates. Personal values travel only in the
encrypted `pii` part, under the key that lets them be erased with what they belong to:
- a project's title and requirements under `project:<id>` (anonymisable on its own);
- a message's text and a file's name under the **author's** `subject:<id>` (erasing the
  author erases them, wherever they were posted).

Each type declares its audit meaning once (action, resource type, categories). The
declarations are collected here and registered by `projects_registry()`, which gives every
service instance a registry of its own: the runtime adds to it the standard events every
service shares (`projects.AccessDenied`, `projects.DataAccessed`, `projects.SubjectErased`,
...; `mmgen.runtime.contract`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mmgen.events.registry import EventData, EventRegistry, PersonalData

D = TypeVar("D", bound=EventData)
_DECLARED: list[tuple[type[EventData], str, dict[str, Any]]] = []


def declare(event_type: str, **meaning: Any) -> Callable[[type[D]], type[D]]:
    """Keep an event class and its audit meaning for `projects_registry()`."""

    def keep(cls: type[D]) -> type[D]:
        _DECLARED.append((cls, event_type, meaning))
        return cls

    return keep


ProjectStatus = Literal["open", "in_progress", "completed", "cancelled"]
MemberRole = Literal["creator", "staff"]
BudgetBand = Literal["under_1k", "1k_5k", "5k_20k", "20k_100k", "over_100k"]
MemberRemovalReason = Literal["removed", "erased"]
LegalBasis = Literal[
    "contract",
    "legal_obligation",
    "legitimate_interests",
    "consent",
    "vital_interests",
    "public_task",
]
RecipientType = Literal["processor", "controller", "public_authority", "payment_provider"]

#: Purposes for which the privacy policy allows sharing personal data; anything else
#: ("sale", "marketing", "advertising", ...) is refused and the refusal audited.
DISCLOSURE_PURPOSES: tuple[str, ...] = (
    "project_execution",
    "legal_compliance",
    "payment_processing",
)
#: Categories a disclosure from a project may concern.
DISCLOSABLE_CATEGORIES: tuple[str, ...] = (
    "contact",
    "business",
    "project",
    "communication",
    "files",
    "payment",
)

RESOURCE_PROJECT = "project"
RESOURCE_MEMBERSHIP = "membership"
RESOURCE_MESSAGE = "message"
RESOURCE_FILE = "file"
RESOURCE_DISCLOSURE = "disclosure"


# --- projects -----------------------------------------------------------------------------------


class ProjectTexts(PersonalData):
    """A project's title and requirements (under `project:<id>`)."""

    title: str
    requirements: str


@declare(
    "projects.ProjectCreated",
    action="create",
    resource_type=RESOURCE_PROJECT,
    categories=["project"],
    owner="resource",
)
class ProjectCreated(EventData):
    """A client created a project; it starts `open`."""

    owner_id: str
    budget_band: BudgetBand | None = None
    deadline: date | None = None
    personal: ClassVar = ProjectTexts


class ProjectTextsCorrected(PersonalData):
    """The corrected texts; a field left out was not changed."""

    title: str | None = None
    requirements: str | None = None


@declare(
    "projects.ProjectUpdated",
    action="update",
    resource_type=RESOURCE_PROJECT,
    categories=["project"],
    owner="resource",
)
class ProjectUpdated(EventData):
    """The owner changed some of title, requirements, budget band and deadline.

    `changed` names the fields changed; public ones carry their new value here (null clears
    a budget band or deadline), personal ones in the encrypted part.
    """

    changed: list[Literal["title", "requirements", "budget_band", "deadline"]]
    budget_band: BudgetBand | None = None
    deadline: date | None = None
    personal: ClassVar = ProjectTextsCorrected


@declare("projects.ProjectStatusChanged", action="update", resource_type=RESOURCE_PROJECT)
class ProjectStatusChanged(EventData):
    """open → in_progress → completed | cancelled; open → cancelled."""

    from_status: ProjectStatus
    to_status: ProjectStatus


# --- membership ---------------------------------------------------------------------------------


@declare(
    "projects.MemberAdded",
    action="create",
    resource_type=RESOURCE_MEMBERSHIP,
    categories=["project"],
)
class MemberAdded(EventData):
    """A creator or staff member joined a project (the subject is the member)."""

    project_id: str
    user_id: str
    role: MemberRole


@declare(
    "projects.MemberRemoved",
    action="delete",
    resource_type=RESOURCE_MEMBERSHIP,
    categories=["project"],
)
class MemberRemoved(EventData):
    """A member left a project: removed by the owner, or erased."""

    project_id: str
    user_id: str
    role: MemberRole
    reason: MemberRemovalReason = "removed"


# --- communication and files --------------------------------------------------------------------


class MessageText(PersonalData):
    text: str


@declare(
    "projects.MessagePosted",
    action="create",
    resource_type=RESOURCE_MESSAGE,
    categories=["communication"],
)
class MessagePosted(EventData):
    """A message in a project's thread; `number` orders the thread (1, 2, ...)."""

    project_id: str
    message_id: str
    number: int = Field(ge=1)
    personal: ClassVar = MessageText


class FileName(PersonalData):
    filename: str


@declare(
    "projects.FileUploaded",
    action="create",
    resource_type=RESOURCE_FILE,
    categories=["files"],
)
class FileUploaded(EventData):
    """A file's content was stored, encrypted in chunks under the uploader's data key.

    The content itself never travels in an event; `key_id` names the uploader's data key
    that seals its chunks, so a shred of that key erases the content with the name.
    """

    project_id: str
    file_id: str
    number: int = Field(ge=1)
    content_type: str
    size: int = Field(ge=1)
    chunks: int = Field(ge=1)
    chunk_bytes: int = Field(ge=1)
    key_id: str
    personal: ClassVar = FileName


# --- disclosures --------------------------------------------------------------------------------


class Recipient(BaseModel):
    """Who received the data: an organisation (its kind and name), named in every report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: RecipientType
    name: str = Field(min_length=1, max_length=200)


@declare(
    "projects.DataDisclosed",
    action="share",
    resource_type=RESOURCE_DISCLOSURE,
    categories=list(DISCLOSABLE_CATEGORIES),
)
class DataDisclosed(EventData):
    """Personal data of a project's people was shared with a recipient.

    One event per subject concerned (the envelope's `subject_id`), all with the same
    `disclosure_id`, so the disclosure reaches each subject's Art. 15 report. The declared
    categories are every category a disclosure may concern; each event's envelope carries
    exactly the ones this disclosure concerned (`categories` here, the same list).
    """

    disclosure_id: str
    project_id: str
    recipient: Recipient
    purpose: str
    legal_basis: LegalBasis
    categories: list[str]
    subject_ids: list[str]


#: Which category each personal field belongs to (footprints, held categories).
FIELD_CATEGORIES: dict[str, str] = {
    "title": "project",
    "requirements": "project",
    "text": "communication",
    "filename": "files",
}
PROJECT_CREATED = "projects.ProjectCreated"
PROJECT_UPDATED = "projects.ProjectUpdated"
PROJECT_STATUS_CHANGED = "projects.ProjectStatusChanged"
MEMBER_ADDED = "projects.MemberAdded"
MEMBER_REMOVED = "projects.MemberRemoved"
MESSAGE_POSTED = "projects.MessagePosted"
FILE_UPLOADED = "projects.FileUploaded"
DATA_DISCLOSED = "projects.DataDisclosed"


def projects_registry() -> EventRegistry:
    """A new registry holding the service's own events (one per service instance)."""
    registry = EventRegistry()
    for cls, event_type, meaning in _DECLARED:
        registry.event(event_type, **meaning)(cls)
    registry.check()
    return registry

"""What the service reads from other services' events: their types and the public fields used.

Profiles never calls another service; it learns from their events (DESIGN.md). These models
are the contract it relies on, checked on every event (extra fields are ignored, missing or
malformed ones make the event a poison message for the dead-letter topic):

- consent's `ConsentGranted` / `ConsentWithdrawn`: `data.purpose`; the envelope's `subject_id`
  (the creator), `stream_version` (of the subject's consent stream) and `occurred_at`;
- projects' `ProjectCreated`: `data.owner_id`; the envelope's `stream_id` (the project id) and
  `stream_version`;
- projects' `MemberAdded` / `MemberRemoved`: `data.project_id`, `data.user_id`, `data.role`
  (`creator` or `staff`); `stream_version` of the project's stream;
- identity's `AccountClosed` / `SubjectErased`: the envelope's `subject_id` (or
  `data.subject_id`).

The projects service was written beside this one (branch wip/projects): its events put a
project's facts and memberships in one stream per project, so `stream_version` orders every
membership change of a project.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mmgen.events.revocation import ACCOUNT_CLOSED, SUBJECT_ERASED
from mmgen.runtime.contract import well_formed_id

CONSENT_GRANTED = "consent.ConsentGranted"
CONSENT_WITHDRAWN = "consent.ConsentWithdrawn"
#: The consent that opens a creator's sensitive fields to clients (consent's catalogue).
SENSITIVE_SHARING = "profile.sensitive_sharing"
PROJECT_CREATED = "projects.ProjectCreated"
MEMBER_ADDED = "projects.MemberAdded"
MEMBER_REMOVED = "projects.MemberRemoved"
IDENTITY_ACCOUNT_CLOSED = ACCOUNT_CLOSED
IDENTITY_SUBJECT_ERASED = SUBJECT_ERASED

CONSENT_EVENT_TYPES = frozenset({CONSENT_GRANTED, CONSENT_WITHDRAWN})
PROJECT_EVENT_TYPES = frozenset({PROJECT_CREATED, MEMBER_ADDED, MEMBER_REMOVED})
IDENTITY_EVENT_TYPES = frozenset({IDENTITY_ACCOUNT_CLOSED, IDENTITY_SUBJECT_ERASED})


def _subject(value: str) -> str:
    canonical = well_formed_id(value)
    if canonical is None:
        raise ValueError("must be a subject id (a UUID)")
    return canonical


SubjectId = Annotated[str, AfterValidator(_subject)]


class _Foreign(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ConsentDecision(_Foreign):
    purpose: str = Field(min_length=1, max_length=200)


class ProjectCreatedData(_Foreign):
    owner_id: SubjectId


class MembershipData(_Foreign):
    project_id: str = Field(min_length=1, max_length=200)
    user_id: SubjectId
    role: Literal["creator", "staff"]


class SubjectOf(_Foreign):
    """Identity's events name the subject in the envelope; some also in `data`."""

    subject_id: SubjectId

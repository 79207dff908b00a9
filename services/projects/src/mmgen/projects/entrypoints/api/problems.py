"""The one place the projects service's exceptions become problem+json (status, slug, title).

Pass `PROBLEMS` to the platform's `create_app(problems=...)`. Details are the exceptions'
messages, which name ids, statuses and purposes, never personal values.
"""

from __future__ import annotations

from typing import Any

from mmgen.events.errors import ConcurrencyError
from mmgen.platform.problems import ProblemSpec
from mmgen.projects.domain.errors import (
    ContentMismatchError,
    ContentTypeNotAllowedError,
    CursorInvalidError,
    DisclosurePurposeRefusedError,
    DisclosureSubjectNotInProjectError,
    FileContentCorruptError,
    FileEmptyError,
    FileErasedError,
    FileTooLargeError,
    MemberAlreadyAddedError,
    MemberNotFoundError,
    MemberUserUnknownError,
    NothingToChangeError,
    OwnerCannotBeMemberError,
    ProjectAnonymizedError,
    ProjectClosedError,
    ProjectConflictError,
    ProjectCreationNotAllowedError,
    ProjectFileNotFoundError,
    ProjectNotFoundError,
    StatusTransitionError,
    SubjectErasedError,
)


def _transition(exc: Any) -> dict[str, Any]:
    return {"current_status": exc.current, "requested_status": exc.requested}


PROBLEMS: dict[type[Exception], ProblemSpec] = {
    ProjectNotFoundError: ProblemSpec(404, "No such project", "project-not-found"),
    ProjectCreationNotAllowedError: ProblemSpec(
        403, "Only clients create projects", "project-creation-not-allowed"
    ),
    CursorInvalidError: ProblemSpec(400, "Invalid cursor", "invalid-cursor"),
    SubjectErasedError: ProblemSpec(410, "Subject erased", "subject-erased"),
    StatusTransitionError: ProblemSpec(
        409, "Status change not allowed", "status-transition-not-allowed", extensions=_transition
    ),
    ProjectClosedError: ProblemSpec(409, "Project closed", "project-closed"),
    ProjectAnonymizedError: ProblemSpec(409, "Project anonymised", "project-anonymized"),
    NothingToChangeError: ProblemSpec(422, "Nothing to change", "nothing-to-change"),
    ProjectConflictError: ProblemSpec(409, "Concurrent update", "concurrent-update"),
    ConcurrencyError: ProblemSpec(
        409, "Concurrent update", "concurrent-update", detail="changed meanwhile; retry"
    ),
    MemberUserUnknownError: ProblemSpec(422, "Unknown user", "member-user-unknown"),
    MemberAlreadyAddedError: ProblemSpec(409, "Already a member", "member-exists"),
    OwnerCannotBeMemberError: ProblemSpec(
        422, "The owner is not a member", "owner-cannot-be-member"
    ),
    MemberNotFoundError: ProblemSpec(404, "No such member", "member-not-found"),
    FileTooLargeError: ProblemSpec(
        413,
        "File too large",
        "file-too-large",
        extensions=lambda exc: {"max_file_bytes": exc.limit},
    ),
    ContentTypeNotAllowedError: ProblemSpec(
        415,
        "Content type not accepted",
        "content-type-not-allowed",
        extensions=lambda exc: {"accepted": list(exc.allowed)},
    ),
    ContentMismatchError: ProblemSpec(
        415, "Content does not match its type", "content-type-mismatch"
    ),
    FileEmptyError: ProblemSpec(422, "Empty file", "file-empty"),
    ProjectFileNotFoundError: ProblemSpec(404, "No such file", "file-not-found"),
    FileErasedError: ProblemSpec(410, "File erased", "file-erased"),
    FileContentCorruptError: ProblemSpec(
        500,
        "Stored file failed its integrity check",
        "file-integrity",
        detail="the stored file failed its integrity check",
    ),
    DisclosurePurposeRefusedError: ProblemSpec(
        422,
        "Disclosure purpose not permitted",
        "disclosure-purpose-not-permitted",
        extensions=lambda exc: {"purpose": exc.purpose, "permitted_purposes": list(exc.permitted)},
    ),
    DisclosureSubjectNotInProjectError: ProblemSpec(
        422, "Subject not in the project", "disclosure-subject-not-in-project"
    ),
}

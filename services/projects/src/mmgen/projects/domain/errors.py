"""Exceptions of the projects service: one root, leaves `<Thing><Problem>Error`.

The HTTP edge maps them to problem+json in one place (entrypoints/api/problems.py). Messages
become a problem's `detail`: they name ids, statuses and purposes, never personal values.
"""

from __future__ import annotations


class ProjectsError(Exception):
    """Root of every exception the projects service raises on purpose."""


# --- access -----------------------------------------------------------------------------------


class ProjectNotFoundError(ProjectsError):
    """No such project — and the answer to every refused access (404, as if it did not exist)."""

    def __init__(self) -> None:
        super().__init__("no such project")


class ProjectCreationNotAllowedError(ProjectsError):
    """Only clients own projects (403)."""

    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(f"a {role} cannot create projects; only clients own projects")


class CursorInvalidError(ProjectsError, ValueError):
    """A page cursor this service did not issue (400)."""

    def __init__(self) -> None:
        super().__init__("the cursor is not one this service issued")


class SubjectErasedError(ProjectsError):
    """The caller's data was erased: nothing new is recorded under their key (410)."""

    def __init__(self) -> None:
        super().__init__("the account's data was erased; nothing more is recorded for it")


# --- projects -----------------------------------------------------------------------------------


class StatusTransitionError(ProjectsError):
    """A status change the rules do not allow (409)."""

    def __init__(self, current: str, requested: str) -> None:
        self.current, self.requested = current, requested
        super().__init__(f"a project cannot go from {current} to {requested}")


class ProjectClosedError(ProjectsError):
    """The project is completed or cancelled: its contents and members no longer change (409)."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(f"the project is {status}; it no longer changes")


class ProjectAnonymizedError(ProjectsError):
    """The project was anonymised: nothing personal is recorded on it any more (409)."""

    def __init__(self) -> None:
        super().__init__("the project was anonymised; it no longer changes")


class NothingToChangeError(ProjectsError, ValueError):
    """A correction that changes nothing (422)."""

    def __init__(self) -> None:
        super().__init__("the request changes nothing")


class ProjectConflictError(ProjectsError):
    """Concurrent changes of one project kept conflicting (409; retry)."""

    def __init__(self) -> None:
        super().__init__("the project changed concurrently; retry the request")


# --- members ------------------------------------------------------------------------------------


class MemberUserUnknownError(ProjectsError, ValueError):
    """No active account with this id and role (422). One error for every reason, so the
    answer tells an owner no more than that the user cannot join as this role."""

    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(f"no active {role} account with this id")


class MemberAlreadyAddedError(ProjectsError):
    """The user is a member already (409)."""

    def __init__(self) -> None:
        super().__init__("the user is a member of the project already")


class OwnerCannotBeMemberError(ProjectsError, ValueError):
    """The owner has every right already; they are not also a member (422)."""

    def __init__(self) -> None:
        super().__init__("the project's owner cannot be added as a member")


class MemberNotFoundError(ProjectsError):
    """The user is not a member of the project (404)."""

    def __init__(self) -> None:
        super().__init__("no such member")


# --- files --------------------------------------------------------------------------------------


class FileTooLargeError(ProjectsError):
    """The upload passed the size limit while streaming; nothing was kept (413)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the file exceeds the limit of {limit} bytes")


class ContentTypeNotAllowedError(ProjectsError):
    """The declared content type is not on the allow-list (415)."""

    def __init__(self, content_type: str, allowed: tuple[str, ...]) -> None:
        self.content_type, self.allowed = content_type, allowed
        super().__init__(f"content type {content_type!r} is not accepted")


class ContentMismatchError(ProjectsError):
    """The bytes do not carry the signature of the declared content type (415)."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        super().__init__(f"the file's bytes are not {content_type}")


class FileEmptyError(ProjectsError, ValueError):
    """An upload without a single byte (422)."""

    def __init__(self) -> None:
        super().__init__("the file is empty")


class ProjectFileNotFoundError(ProjectsError):
    """No such file in this project (404)."""

    def __init__(self) -> None:
        super().__init__("no such file")


class FileErasedError(ProjectsError):
    """The file's uploader was erased, or the project anonymised: its content is gone (410)."""

    def __init__(self) -> None:
        super().__init__("the file was erased")


class FileContentCorruptError(ProjectsError):
    """A stored chunk failed authentication, is missing, or is out of place (500: tampering
    or data loss, never an answer to a user's mistake)."""

    def __init__(self, file_id: str, reason: str) -> None:
        self.file_id = file_id
        super().__init__(f"file {file_id}: {reason}")


# --- disclosures --------------------------------------------------------------------------------


class DisclosurePurposeRefusedError(ProjectsError):
    """A disclosure for a purpose the privacy policy does not permit (sale, marketing, ...).

    Distinct from a validation error on purpose: it is a refusal of a request to share
    personal data, audited as such (422 with its own problem type).
    """

    def __init__(self, purpose: str, permitted: tuple[str, ...]) -> None:
        self.purpose, self.permitted = purpose, permitted
        super().__init__(
            f"personal data is not disclosed for {purpose!r}; only for {', '.join(permitted)}"
        )


class DisclosureSubjectNotInProjectError(ProjectsError, ValueError):
    """A disclosure names a subject who is neither the owner nor a member (422)."""

    def __init__(self) -> None:
        super().__init__("every subject of a disclosure must be the project's owner or a member")

"""Domain exceptions of the profiles service; the HTTP edge maps them to problem+json in one place.

Messages become the problem's `detail`: they name fields and rules, never submitted values
(a rejected phone number must not come back in an error, a log line or a trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ProfilesError(Exception):
    """Root of every profiles-service exception."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: where (dotted path, list indexes included) and which rule it broke."""

    field: str
    message: str
    type: str = "value_error"


class ProfileInvalidError(ProfilesError):
    """The submitted profile breaks a rule (422); `problems` lists every invalid field."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        fields = ", ".join(sorted({p.field for p in self.problems}))
        super().__init__(f"invalid fields: {fields}" if fields else "the profile is invalid")


class ProfileNotFoundError(ProfilesError):
    """No profile the caller may see (404): missing and hidden look the same from outside."""

    def __init__(self, detail: str = "no such profile") -> None:
        super().__init__(detail)


class NotACreatorError(ProfilesError):
    """Only creators have profiles (403)."""

    def __init__(self) -> None:
        super().__init__("only creators have a profile")


class ProfileErasedError(ProfilesError):
    """The creator's data was erased: nothing new is recorded for them (410)."""

    def __init__(self) -> None:
        super().__init__("the creator's data was erased; nothing more is recorded for them")


class ProfileConflictError(ProfilesError):
    """The profile changed concurrently and kept conflicting (409, retry)."""

    def __init__(self) -> None:
        super().__init__("the profile changed concurrently; retry the request")


class SearchQueryInvalidError(ProfilesError):
    """A search that cannot be answered as asked (422), e.g. too many words in `q`."""

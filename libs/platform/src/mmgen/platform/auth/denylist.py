"""Revocation by subject: tokens of closed or erased accounts stop working everywhere, and so
do the tokens a subject held before changing (or resetting) its password.

Services feed a `SubjectDenylist` from identity's events (`AccountClosed`/`SubjectErased`
deny the subject; `PasswordChanged` sets its `not_before`); `TokenVerifier` consults it after a
token's signature and claims check out, refusing a denied subject and a token whose `iat` is
before the subject's `not_before`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class SubjectDenylist(Protocol):
    async def is_denied(self, subject_id: str) -> bool: ...

    async def not_before(self, subject_id: str) -> float | None:
        """The instant (seconds since the epoch) before which the subject's tokens are void,
        or None when none is set."""
        ...


class InMemorySubjectDenylist:
    """Denied subjects and not-before instants, held in the process (for unit tests)."""

    def __init__(self, subject_ids: Iterable[str] = ()) -> None:
        self._denied: set[str] = set(subject_ids)
        self._not_before: dict[str, float] = {}

    async def is_denied(self, subject_id: str) -> bool:
        return subject_id in self._denied

    async def not_before(self, subject_id: str) -> float | None:
        return self._not_before.get(subject_id)

    def deny(self, subject_id: str) -> None:
        self._denied.add(subject_id)

    def allow(self, subject_id: str) -> None:
        self._denied.discard(subject_id)

    def void_before(self, subject_id: str, instant: float) -> None:
        """Tokens of `subject_id` issued before `instant` stop verifying (a later instant wins,
        as events may arrive twice or out of order)."""
        self._not_before[subject_id] = max(instant, self._not_before.get(subject_id, instant))

    def __len__(self) -> int:
        return len(self._denied)

"""Revocation by subject: tokens of closed or erased accounts stop working everywhere.

Services feed a `SubjectDenylist` from identity's `SubjectClosed`/`SubjectErased` events;
`TokenVerifier` consults it after a token's signature and claims check out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class SubjectDenylist(Protocol):
    async def is_denied(self, subject_id: str) -> bool: ...


class InMemorySubjectDenylist:
    """A set of denied subject ids, held in the process (fed from events at start-up)."""

    def __init__(self, subject_ids: Iterable[str] = ()) -> None:
        self._denied: set[str] = set(subject_ids)

    async def is_denied(self, subject_id: str) -> bool:
        return subject_id in self._denied

    def deny(self, subject_id: str) -> None:
        self._denied.add(subject_id)

    def allow(self, subject_id: str) -> None:
        self._denied.discard(subject_id)

    def __len__(self) -> int:
        return len(self._denied)

"""Read models of the consent service: their records and ports (Protocols).

They are projections of the event store (the source of truth): `ReadModelProjection` writes
them after each append and catches up after a crash. Each port has a Mongo adapter
(`adapters.mongo`, what the service runs on) and an in-memory one (`adapters.memory`, for
unit tests); both behave alike: writes are idempotent and never move a read model backwards.
Deletes take the caller's database session (an erasure commits them with the consumer's
transaction); the in-memory adapters have no transactions and ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mmgen.consent.domain.model import ConsentState

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

#: Fields of a consent row that say something about the subject (counted by the footprint).
CONSENT_ROW_FIELDS = ("granted", "policy_version", "method", "decided_at")


@dataclass(frozen=True)
class PolicySummary:
    """A published policy version without its text (listings)."""

    version: str
    title: str
    effective_at: datetime
    sha256: str
    published_at: datetime
    published_by: str | None


@dataclass(frozen=True)
class Policy(PolicySummary):
    """A published policy version with its text (public, never changed after publication)."""

    text: str


@dataclass(frozen=True)
class TrackedEvent:
    """An accepted analytics event: ids and name only (contents stay encrypted in the store)."""

    event_id: str
    subject_id: str
    name: str
    received_at: datetime


class ConsentReadModel(Protocol):
    """Current decision per (subject, purpose), as `GET /consents/*` shows it."""

    async def put(self, subject_id: str, state: ConsentState, stream_version: int) -> None:
        """Write the decision as of `stream_version`, unless a newer one is there already."""

    async def of_subject(self, subject_id: str) -> list[ConsentState]:
        """The subject's decisions, by purpose."""

    async def get(self, subject_id: str, purpose: str) -> ConsentState | None: ...

    async def count(self, subject_id: str) -> int: ...

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int: ...


class PolicyReadModel(Protocol):
    """Published policy versions (public documents, not personal data)."""

    async def add(self, policy: Policy) -> None:
        """Record a version once; adding it again changes nothing."""

    async def get(self, version: str) -> Policy | None: ...

    async def current(self, now: datetime) -> PolicySummary | None:
        """The newest version whose effective date has come."""

    async def all(self, limit: int = 200) -> list[PolicySummary]:
        """Every version, newest effective date first."""


class TrackingReadModel(Protocol):
    """Accepted analytics events per subject, at most a bounded number each."""

    async def add(self, event: TrackedEvent) -> None:
        """Record the event once; adding it again changes nothing."""

    async def has(self, event_id: str) -> bool: ...

    async def newer(self, event: TrackedEvent) -> int:
        """How many of the subject's events come after `event`, in the order `trim` keeps."""

    async def trim(self, subject_id: str, keep: int) -> int:
        """Drop the subject's oldest events beyond `keep`; how many were dropped."""

    async def of_subject(self, subject_id: str, limit: int) -> list[TrackedEvent]:
        """The subject's events, oldest first."""

    async def count(self, subject_id: str) -> int: ...

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int: ...

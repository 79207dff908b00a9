"""The read models in memory: the same behaviour as `adapters.mongo`, for unit tests (no I/O)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from mmgen.consent.adapters.read_models import Policy, PolicySummary, TrackedEvent
from mmgen.consent.domain.model import ConsentState
from mmgen.events.envelope import normalize_time

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession


class InMemoryConsentReadModel:
    """`ConsentReadModel` in a dict keyed by (subject, purpose)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[ConsentState, int]] = {}

    async def put(self, subject_id: str, state: ConsentState, stream_version: int) -> None:
        key = (subject_id, state.purpose)
        current = self.rows.get(key)
        if current is None or current[1] < stream_version:
            self.rows[key] = (state, stream_version)

    async def of_subject(self, subject_id: str) -> list[ConsentState]:
        states = [state for (subject, _), (state, _) in self.rows.items() if subject == subject_id]
        return sorted(states, key=lambda s: s.purpose)

    async def get(self, subject_id: str, purpose: str) -> ConsentState | None:
        row = self.rows.get((subject_id, purpose))
        return None if row is None else row[0]

    async def count(self, subject_id: str) -> int:
        return len(await self.of_subject(subject_id))

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int:
        keys = [key for key in self.rows if key[0] == subject_id]
        for key in keys:
            del self.rows[key]
        return len(keys)


class InMemoryPolicyReadModel:
    """`PolicyReadModel` in a dict keyed by version."""

    def __init__(self) -> None:
        self.policies: dict[str, Policy] = {}

    async def add(self, policy: Policy) -> None:
        self.policies.setdefault(policy.version, policy)

    async def get(self, version: str) -> Policy | None:
        return self.policies.get(version)

    async def current(self, now: datetime) -> PolicySummary | None:
        in_effect = [p for p in self.policies.values() if normalize_time(p.effective_at) <= now]
        if not in_effect:
            return None
        newest = max(in_effect, key=lambda p: (normalize_time(p.effective_at), p.published_at))
        return _summary(newest)

    async def all(self, limit: int = 200) -> list[PolicySummary]:
        newest_first = sorted(
            self.policies.values(), key=lambda p: normalize_time(p.effective_at), reverse=True
        )
        return [_summary(p) for p in newest_first[:limit]]


def _summary(policy: Policy) -> PolicySummary:
    fields = asdict(policy)
    del fields["text"]
    return PolicySummary(**fields)


class InMemoryTrackingReadModel:
    """`TrackingReadModel` in a dict keyed by event id."""

    def __init__(self) -> None:
        self.events: dict[str, TrackedEvent] = {}

    async def add(self, event: TrackedEvent) -> None:
        self.events.setdefault(event.event_id, event)

    async def has(self, event_id: str) -> bool:
        return event_id in self.events

    async def newer(self, event: TrackedEvent) -> int:
        at = (event.received_at, event.event_id)
        return sum(
            1
            for e in self.events.values()
            if e.subject_id == event.subject_id and (e.received_at, e.event_id) > at
        )

    async def trim(self, subject_id: str, keep: int) -> int:
        mine = await self.of_subject(subject_id, len(self.events))
        dropped = mine[: max(0, len(mine) - keep)]
        for event in dropped:
            del self.events[event.event_id]
        return len(dropped)

    async def of_subject(self, subject_id: str, limit: int) -> list[TrackedEvent]:
        mine = [e for e in self.events.values() if e.subject_id == subject_id]
        return sorted(mine, key=lambda e: (e.received_at, e.event_id))[:limit]

    async def count(self, subject_id: str) -> int:
        return sum(1 for e in self.events.values() if e.subject_id == subject_id)

    async def delete_subject(
        self, subject_id: str, session: AsyncClientSession | None = None
    ) -> int:
        mine = [key for key, e in self.events.items() if e.subject_id == subject_id]
        for key in mine:
            del self.events[key]
        return len(mine)

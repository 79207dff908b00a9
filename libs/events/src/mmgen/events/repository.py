"""Event-sourced repository and aggregate base: load a stream and fold it, append new events.

    class User(Aggregate):
        role: str = ""
        email: str | Erased = ERASED

        def when(self, data: EventData, personal: Any) -> None:
            match data:
                case UserRegistered(role=role):
                    self.role, self.email = role, personal.email   # ERASED if shredded

    user = await repo.get(User, user_id)            # None if the stream is empty
    user.record(NewEvent(EmailChanged(), personal=EmailChangedPII(email=e), subject_id=uid))
    await repo.save(user)                           # ConcurrencyError if someone else wrote

Folding never raises for erased data: `when` receives `ERASED` markers instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self, TypeVar

from opentelemetry.trace import SpanKind

from mmgen.events.envelope import Envelope
from mmgen.events.mapper import DomainEvent, EventMapper, NewEvent
from mmgen.events.registry import EventData
from mmgen.events.snapshots import Snapshot, SnapshotStore
from mmgen.events.store import EventStore
from mmgen.events.tracing import tracer


class Aggregate:
    """State as the fold of `when(data, personal)` over a stream's events."""

    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.version = 0
        self.pending: list[NewEvent[Any]] = []
        self.owners: set[str] = set()

    def when(self, data: EventData, personal: Any) -> None:
        """Apply one event's public data and personal part (`ERASED` after a shred)."""
        raise NotImplementedError

    def record(self, event: NewEvent[Any]) -> None:
        """Decide: apply the new event now and keep it for `save`."""
        self.when(event.data, event.personal)
        self.pending.append(event)

    def apply(self, event: DomainEvent[Any]) -> None:
        """Replay a stored event."""
        self.when(event.data, event.personal)
        self.version = event.stream_version
        if event.envelope.owner is not None:
            self.owners.add(event.envelope.owner)

    # Snapshots are opt-in: return a JSON/BSON-friendly dict and implement `restore`.
    def snapshot_state(self) -> dict[str, Any] | None:
        return None

    @classmethod
    def restore(cls, stream_id: str, state: dict[str, Any]) -> Self:
        raise NotImplementedError(f"{cls.__name__} does not restore from snapshots")


A = TypeVar("A", bound=Aggregate)


class EventSourcedRepository:
    """Loads and appends a service's events through the mapper (encryption) and the store."""

    def __init__(
        self,
        store: EventStore,
        mapper: EventMapper,
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 100,
    ) -> None:
        self.store = store
        self.mapper = mapper
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every

    async def load(
        self, stream_id: str, after_version: int = 0, up_to_version: int | None = None
    ) -> list[DomainEvent[Any]]:
        """The stream's events, decrypted (erased markers for shredded owners), upcast."""
        envelopes = await self.store.load(stream_id, after_version, up_to_version)
        return [await self.mapper.to_domain(e) for e in envelopes]

    async def decode(self, envelopes: Sequence[Envelope]) -> list[DomainEvent[Any]]:
        """Decode envelopes read elsewhere (e.g. `store.read_range`, a Kafka consumer)."""
        return [await self.mapper.to_domain(e) for e in envelopes]

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent[Any]],
        *,
        session: Any = None,
    ) -> list[DomainEvent[Any]]:
        """Encrypt and append; `ConcurrencyError` if the stream is not at `expected_version`.

        With `session` (a database transaction, e.g. a consumer's), the events commit or roll
        back together with the caller's other writes in it.
        """
        # The envelopes are made inside the span, so the `traceparent` they carry (the relay
        # and every consumer continue it) names the append. No stream id or subject in the
        # span's attributes: traces leave the service, personal identifiers must not.
        with tracer().start_as_current_span(
            "events append",
            kind=SpanKind.INTERNAL,
            attributes={
                "db.system": "mongodb",
                "mmgen.event_types": sorted({type(e.data).__name__ for e in events}),
                "mmgen.events": len(events),
            },
        ):
            envelopes = [
                await self.mapper.to_envelope(event, stream_id, expected_version + offset)
                for offset, event in enumerate(events, start=1)
            ]
            if session is not None:
                stored = await self.store.append_in(session, stream_id, expected_version, envelopes)
            else:
                stored = await self.store.append(stream_id, expected_version, envelopes)
        return [
            DomainEvent(envelope=env, data=event.data, personal=event.personal)
            for env, event in zip(stored, events, strict=True)
        ]

    async def get(self, cls: type[A], stream_id: str) -> A | None:
        """Rehydrate an aggregate (from its snapshot if any); `None` if the stream is empty."""
        aggregate: A | None = None
        after = 0
        if self.snapshots is not None:
            snapshot = await self.snapshots.get(stream_id)
            if snapshot is not None:
                aggregate = cls.restore(stream_id, snapshot.state)
                aggregate.version = snapshot.version
                aggregate.owners = set(snapshot.owners)
                after = snapshot.version
        events = await self.load(stream_id, after_version=after)
        if aggregate is None:
            if not events:
                return None
            aggregate = cls(stream_id)
        for event in events:
            aggregate.apply(event)
        return aggregate

    async def save(self, aggregate: Aggregate) -> list[DomainEvent[Any]]:
        """Append the aggregate's pending events at its version; snapshot every N versions."""
        if not aggregate.pending:
            return []
        stored = await self.append(aggregate.id, aggregate.version, aggregate.pending)
        before = aggregate.version
        aggregate.pending = []
        aggregate.version = stored[-1].stream_version
        aggregate.owners.update(e.envelope.owner for e in stored if e.envelope.owner)
        if (
            self.snapshots is not None
            and aggregate.version // self.snapshot_every > before // self.snapshot_every
        ):
            state = aggregate.snapshot_state()
            if state is not None:
                await self.snapshots.save(
                    Snapshot(
                        aggregate.id, aggregate.version, state, tuple(sorted(aggregate.owners))
                    )
                )
        return stored

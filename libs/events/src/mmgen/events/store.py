"""The event-store port (`EventStore`), its append rules, and the in-memory fake for unit tests.

Semantics every backend keeps (the contract tests in `tests/contract` run against each):
- `append(stream_id, expected_version, events)` is all-or-nothing. `expected_version` is the
  stream's current version (0 for a new stream); the events carry `stream_version`
  `expected_version + 1, + 2, ...`. If the stream moved on, `ConcurrencyError` — nothing written.
- Every appended event gets the producer's next `producer_seq`, gapless, in commit order.
- Reads are bounded: `load` pages through a stream by version windows, `read_range` reads one
  `[start_seq, end_seq)` window of at most `max_read_window` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from mmgen.events.envelope import Envelope
from mmgen.events.errors import (
    AppendInvalidError,
    ConcurrencyError,
    DuplicateEventIdError,
    EventNotAuditableError,
    ReadWindowTooLargeError,
    StoreClosedError,
)

DEFAULT_MAX_READ_WINDOW = 5_000


@runtime_checkable
class EventStore(Protocol):
    """Port of an append-only event store for one producer (one service)."""

    @property
    def producer(self) -> str:
        """The producer whose `producer_seq` this store stamps."""
        ...

    @property
    def max_read_window(self) -> int:
        """The largest `end_seq - start_seq` that `read_range` accepts."""
        ...

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        """Append atomically; returns the events with their `producer_seq` set."""
        ...

    async def append_in(
        self, session: Any, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        """Append inside the caller's database transaction (`session`), committed with it."""
        ...

    async def load(
        self, stream_id: str, after_version: int = 0, up_to_version: int | None = None
    ) -> list[Envelope]:
        """Events of one stream with `after_version < stream_version <= up_to_version`, in order."""
        ...

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 if it has no events)."""
        ...

    async def read_range(self, start_seq: int, end_seq: int) -> list[Envelope]:
        """Committed events with `start_seq <= producer_seq < end_seq`, by `producer_seq`."""
        ...

    async def last_seq(self) -> int:
        """The highest committed `producer_seq` (0 before the first append)."""
        ...

    async def wait_for_append(self, after_seq: int, timeout: float) -> int:  # noqa: ASYNC109
        """Return `last_seq()` as soon as it exceeds `after_seq`, or when `timeout` passes."""
        ...

    async def get(self, event_id: str) -> Envelope | None:
        """One event by id, or `None`."""
        ...


def check_append(
    producer: str, stream_id: str, expected_version: int, events: Sequence[Envelope]
) -> None:
    """Refuse an append whose events do not fit the stream (a programming error, not a conflict)."""
    if not events:
        raise AppendInvalidError("append needs at least one event")
    if expected_version < 0:
        raise AppendInvalidError("expected_version must be >= 0")
    seen: set[str] = set()
    for offset, event in enumerate(events, start=1):
        if event.stream_id != stream_id:
            raise AppendInvalidError(
                f"event {event.event_id} belongs to stream {event.stream_id!r}, not {stream_id!r}"
            )
        if event.stream_version != expected_version + offset:
            raise AppendInvalidError(
                f"event {event.event_id} has stream_version {event.stream_version}, "
                f"expected {expected_version + offset}"
            )
        if event.producer != producer:
            raise AppendInvalidError(
                f"event {event.event_id} is from producer {event.producer!r}, "
                f"this store stamps {producer!r}"
            )
        if event.producer_seq is not None:
            raise AppendInvalidError(f"event {event.event_id} already has a producer_seq")
        if event.event_id in seen:
            raise AppendInvalidError(f"event id {event.event_id} appears twice in one append")
        seen.add(event.event_id)
        check_auditable(event)


#: What an audit entry holds (mmgen.auditlog.entry): strings of at most this many characters,
#: at most this many categories; and what one Kafka request carries (production's default).
MAX_AUDITED_STRING = 256
MAX_CATEGORIES = 32
MAX_EVENT_BYTES = 1024 * 1024


def check_auditable(event: Envelope) -> None:
    """Refuse at the source what the audit log or Kafka could not hold, with the reason.

    `subject_id` a UUID or null; actor, purpose, resource and names non-empty and bounded;
    distinct categories, bounded; the encoded event within one Kafka request.
    """

    def refuse(reason: str) -> None:
        raise EventNotAuditableError(f"event {event.event_id} ({event.event_type}): {reason}")

    if event.subject_id is not None:
        try:
            canonical = str(uuid.UUID(event.subject_id))
        except ValueError:
            canonical = None
        if canonical != event.subject_id:
            refuse("subject_id must be a canonical UUID or null")
    bounded: dict[str, str | None] = {
        "event_type": event.event_type,
        "producer": event.producer,
        "purpose": event.purpose,
        "actor.id": event.actor.id if event.actor else None,
        "actor.role": event.actor.role if event.actor else None,
        "resource.type": event.resource.type,
        "resource.id": event.resource.id,
    }
    for name, value in bounded.items():
        if value is not None and not 0 < len(value) <= MAX_AUDITED_STRING:
            refuse(f"{name} must be 1 to {MAX_AUDITED_STRING} characters")
    if len(event.categories) > MAX_CATEGORIES or len(set(event.categories)) != len(
        event.categories
    ):
        refuse(f"categories must be distinct and at most {MAX_CATEGORIES}")
    if any(not c or len(c) > MAX_AUDITED_STRING for c in event.categories):
        refuse("every category must be a non-empty, bounded string")
    if len(event.to_wire()) > MAX_EVENT_BYTES:
        refuse(f"encoded event over {MAX_EVENT_BYTES} bytes")


def check_window(start_seq: int, end_seq: int, max_window: int) -> None:
    if start_seq < 1 or end_seq < start_seq:
        raise ReadWindowTooLargeError(f"bad window [{start_seq}, {end_seq})")
    if end_seq - start_seq > max_window:
        raise ReadWindowTooLargeError(
            f"window [{start_seq}, {end_seq}) exceeds {max_window} events; read it in pieces"
        )


class CommitSignal:
    """Wakes `wait_for_append` callers in this process when a commit lands."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


async def wait_until_past(
    store: EventStore,
    signal: CommitSignal,
    after_seq: int,
    timeout: float,  # noqa: ASYNC109
    poll_interval: float,
) -> int:
    """Loop of `wait_for_append`: a local commit wakes it, polling sees other processes' commits."""
    deadline = time.monotonic() + timeout
    while True:
        wake = signal.current()
        last = await store.last_seq()
        remaining = deadline - time.monotonic()
        if last > after_seq or remaining <= 0:
            return last
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), min(poll_interval, remaining))


class InMemoryEventStore:
    """The `EventStore` contract in memory, for unit tests of services (no I/O)."""

    def __init__(
        self,
        producer: str,
        *,
        max_read_window: int = DEFAULT_MAX_READ_WINDOW,
        poll_interval: float = 0.05,
    ) -> None:
        self._producer = producer
        self._max_read_window = max_read_window
        self._poll_interval = poll_interval
        self._streams: dict[str, list[Envelope]] = {}
        self._log: list[Envelope] = []
        self._by_id: dict[str, Envelope] = {}
        self._lock = asyncio.Lock()
        self._signal = CommitSignal()
        self._closed = False

    @property
    def producer(self) -> str:
        return self._producer

    @property
    def max_read_window(self) -> int:
        return self._max_read_window

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        check_append(self._producer, stream_id, expected_version, events)
        if self._closed:
            raise StoreClosedError("store is closed")
        async with self._lock:
            stream = self._streams.get(stream_id, [])
            if len(stream) != expected_version:
                raise ConcurrencyError(stream_id, expected_version, len(stream))
            dupes = [e.event_id for e in events if e.event_id in self._by_id]
            if dupes:
                raise DuplicateEventIdError(dupes)
            first = len(self._log) + 1
            stored = [e.with_position(first + i) for i, e in enumerate(events)]
            self._streams[stream_id] = [*stream, *stored]
            self._log.extend(stored)
            self._by_id.update((e.event_id, e) for e in stored)
        self._signal.fire()
        return stored

    async def append_in(
        self, session: Any, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        """No transactions in memory: the same as `append`."""
        del session
        return await self.append(stream_id, expected_version, events)

    async def load(
        self, stream_id: str, after_version: int = 0, up_to_version: int | None = None
    ) -> list[Envelope]:
        stream = self._streams.get(stream_id, [])
        end = len(stream) if up_to_version is None else min(up_to_version, len(stream))
        return list(stream[max(after_version, 0) : max(end, 0)])

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def read_range(self, start_seq: int, end_seq: int) -> list[Envelope]:
        check_window(start_seq, end_seq, self._max_read_window)
        return list(self._log[start_seq - 1 : end_seq - 1])

    async def last_seq(self) -> int:
        return len(self._log)

    async def wait_for_append(self, after_seq: int, timeout: float) -> int:  # noqa: ASYNC109
        return await wait_until_past(self, self._signal, after_seq, timeout, self._poll_interval)

    async def get(self, event_id: str) -> Envelope | None:
        return self._by_id.get(event_id)

    async def close(self) -> None:
        self._closed = True

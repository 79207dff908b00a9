"""The EventStore contract, written once, run against InMemoryEventStore and MongoEventStore."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mmgen.events.envelope import Envelope
from mmgen.events.errors import (
    AppendInvalidError,
    ConcurrencyError,
    DuplicateEventIdError,
    EventNotAuditableError,
    ReadWindowTooLargeError,
    StoreClosedError,
)
from mmgen.events.store import EventStore

PRODUCER = "testsvc"
Streams = Callable[[], str]
Maker = Callable[..., list[Envelope]]


async def test_append_then_load_returns_the_same_events_with_positions(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
) -> None:
    stream = new_stream()
    events = make_events(stream, 0, 3)
    stored = await event_store.append(stream, 0, events)
    assert [e.producer_seq for e in stored] == [1, 2, 3]
    assert [e.model_copy(update={"producer_seq": None}) for e in stored] == events
    assert await event_store.load(stream) == stored
    assert await event_store.stream_version(stream) == 3
    assert await event_store.last_seq() == 3
    assert await event_store.get(events[1].event_id) == stored[1]
    assert await event_store.get("01a211c2-1187-72c0-ac25-6d9721e96baa") is None


async def test_load_window_by_version(
    event_store: EventStore, new_stream: Streams, make_events: Maker
) -> None:
    stream = new_stream()
    await event_store.append(stream, 0, make_events(stream, 0, 5))
    window = await event_store.load(stream, after_version=1, up_to_version=3)
    assert [e.stream_version for e in window] == [2, 3]
    assert await event_store.load(new_stream()) == []


async def test_stale_expected_version_is_a_conflict_and_writes_nothing(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
) -> None:
    stream = new_stream()
    await event_store.append(stream, 0, make_events(stream, 0, 2))
    with pytest.raises(ConcurrencyError) as info:
        await event_store.append(stream, 1, make_events(stream, 1, 1))
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    with pytest.raises(ConcurrencyError):
        await event_store.append(stream, 5, make_events(stream, 5, 1))
    assert await event_store.stream_version(stream) == 2
    assert await event_store.last_seq() == 2


async def test_two_appends_at_the_same_version_exactly_one_wins(
    event_store: EventStore, new_stream: Streams, make_events: Maker
) -> None:
    stream = new_stream()
    await event_store.append(stream, 0, make_events(stream, 0))
    contenders = [make_events(stream, 1, 2) for _ in range(5)]
    results = await asyncio.gather(
        *(event_store.append(stream, 1, evs) for evs in contenders), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in losers)
    loaded = await event_store.load(stream)
    assert [e.event_id for e in loaded[1:]] == [e.event_id for e in winners[0]]
    assert await event_store.last_seq() == 3


async def test_conflict_in_a_concurrent_batch_does_not_fail_the_others(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
) -> None:
    streams = [new_stream() for _ in range(6)]
    stale = streams[0]
    await event_store.append(stale, 0, make_events(stale, 0))
    calls = [event_store.append(stale, 0, make_events(stale, 0))]
    calls += [event_store.append(s, 0, make_events(s, 0, 2)) for s in streams[1:]]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[0], ConcurrencyError)
    assert all(isinstance(r, list) for r in results[1:])
    assert await event_store.last_seq() == 11
    assert sorted(e.producer_seq for r in results[1:] for e in r) == list(range(2, 12))


async def test_duplicate_event_id_is_refused_without_failing_concurrent_appends(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
) -> None:
    first, second, third = new_stream(), new_stream(), new_stream()
    original = make_events(first, 0)
    await event_store.append(first, 0, original)
    replay = original[0].model_copy(update={"stream_id": second})
    results = await asyncio.gather(
        event_store.append(second, 0, [replay]),
        event_store.append(third, 0, make_events(third, 0)),
        return_exceptions=True,
    )
    assert isinstance(results[0], DuplicateEventIdError)
    assert results[0].event_ids == [original[0].event_id]
    assert isinstance(results[1], list)
    assert await event_store.stream_version(second) == 0
    assert await event_store.last_seq() == 2


@pytest.mark.parametrize(
    ("stream_offset", "version_offset", "producer"),
    [(True, 0, PRODUCER), (False, 1, PRODUCER), (False, 0, "someone-else")],
)
async def test_events_that_do_not_fit_the_stream_are_refused(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
    stream_offset: bool,
    version_offset: int,
    producer: str,
) -> None:
    stream = new_stream()
    event = make_events(stream, 0)[0]
    event = event.model_copy(
        update={
            "stream_id": new_stream() if stream_offset else stream,
            "stream_version": 1 + version_offset,
            "producer": producer,
        }
    )
    with pytest.raises(AppendInvalidError):
        await event_store.append(stream, 0, [event])
    with pytest.raises(AppendInvalidError):
        await event_store.append(stream, 0, [])
    assert await event_store.last_seq() == 0


async def test_read_range_is_a_half_open_bounded_window(
    event_store: EventStore, new_stream: Streams, make_events: Maker
) -> None:
    for _ in range(4):
        stream = new_stream()
        await event_store.append(stream, 0, make_events(stream, 0, 3))
    got = await event_store.read_range(4, 9)
    assert [e.producer_seq for e in got] == [4, 5, 6, 7, 8]
    assert await event_store.read_range(13, 20) == []
    assert [e.producer_seq for e in await event_store.read_range(1, 2)] == [1]
    with pytest.raises(ReadWindowTooLargeError):
        await event_store.read_range(1, 1 + event_store.max_read_window + 1)
    with pytest.raises(ReadWindowTooLargeError):
        await event_store.read_range(0, 5)


async def test_wait_for_append_wakes_on_commit_and_times_out_otherwise(
    event_store: EventStore,
    new_stream: Streams,
    make_events: Maker,
) -> None:
    start = time.monotonic()
    assert await event_store.wait_for_append(0, timeout=0.2) == 0
    assert time.monotonic() - start >= 0.19
    stream = new_stream()
    waiter = asyncio.create_task(event_store.wait_for_append(0, timeout=30))
    await asyncio.sleep(0)
    await event_store.append(stream, 0, make_events(stream, 0, 2))
    assert await asyncio.wait_for(waiter, 10) == 2
    assert await event_store.wait_for_append(1, timeout=30) == 2


async def test_the_same_event_id_in_two_concurrent_appends_lands_once(
    event_store: EventStore, new_stream: Streams, make_events: Maker
) -> None:
    first, second, third = new_stream(), new_stream(), new_stream()
    event = make_events(first, 0)[0]
    twin = event.model_copy(update={"stream_id": second})
    results = await asyncio.gather(
        event_store.append(first, 0, [event]),
        event_store.append(second, 0, [twin]),
        event_store.append(third, 0, make_events(third, 0)),
        return_exceptions=True,
    )
    assert isinstance(results[0], list) and isinstance(results[2], list)
    assert isinstance(results[1], DuplicateEventIdError)
    assert await event_store.last_seq() == 2
    assert [e.producer_seq for e in await event_store.read_range(1, 3)] == [1, 2]


async def test_a_closed_store_refuses_appends_but_keeps_what_it_committed(
    event_store: EventStore, new_stream: Streams, make_events: Maker
) -> None:
    stream = new_stream()
    await event_store.append(stream, 0, make_events(stream, 0))
    await event_store.close()  # type: ignore[attr-defined]
    with pytest.raises(StoreClosedError):
        await event_store.append(stream, 1, make_events(stream, 1))
    assert [e.stream_version for e in await event_store.load(stream)] == [1]


@pytest.mark.parametrize(
    "update",
    [
        {"purpose": ""},
        {"subject_id": "x" * 300},
        {"subject_id": "not-a-uuid"},
        {"purpose": "p" * 257},
        {"categories": ("contact", "contact")},
        {"data": {"blob": "x" * (1024 * 1024 + 1)}},
    ],
    ids=[
        "empty-purpose",
        "300-char-subject",
        "non-uuid-subject",
        "long-purpose",
        "dup-cats",
        "2MiB",
    ],
)
async def test_an_event_the_audit_log_could_not_hold_is_refused_at_append(
    event_store: EventStore, new_stream: Streams, make_events: Maker, update: dict[str, object]
) -> None:
    stream = new_stream()
    [event] = make_events(stream, 0, 1)
    with pytest.raises(EventNotAuditableError) as refused:
        await event_store.append(stream, 0, [event.model_copy(update=update)])
    assert event.event_id in str(refused.value)
    assert await event_store.stream_version(stream) == 0
    assert await event_store.get(event.event_id) is None

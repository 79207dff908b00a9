"""Storage contract fixtures: each test runs against the in-memory fake AND the real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.store import EventStore, InMemoryEventStore

PRODUCER = "testsvc"
#: `wait_for_append` also polls (for other processes' commits); polling this rarely leaves
#: only the commit signal to wake a waiter within a test's deadline.
POLL_INTERVAL_S = 60.0


@pytest.fixture(params=["memory", "mongo"])
async def event_store(request: pytest.FixtureRequest, mongo_db: Any) -> AsyncIterator[EventStore]:
    """One store per test; the "mongo" variant on a fresh database of the real local server."""
    if request.param == "memory":
        store: Any = InMemoryEventStore(
            PRODUCER, max_read_window=500, poll_interval=POLL_INTERVAL_S
        )
    else:
        db = mongo_db
        store = MongoEventStore(db, PRODUCER, max_read_window=500, poll_interval=POLL_INTERVAL_S)
        await store.ensure_indexes()
    try:
        yield store
    finally:
        await store.close()


def _new_stream() -> str:
    return f"stream-{uuid.uuid4().hex}"


def _make_events(stream_id: str, expected_version: int, count: int = 1) -> list[Envelope]:
    return [
        Envelope(
            event_type="testsvc.ThingHappened",
            schema_version=1,
            producer=PRODUCER,
            stream_id=stream_id,
            stream_version=expected_version + i + 1,
            action="update",
            resource=Resource(type="thing", id=stream_id),
            data={"n": expected_version + i + 1},
            categories=("usage",),
        )
        for i in range(count)
    ]


@pytest.fixture
def new_stream() -> Callable[[], str]:
    """A fresh random stream id per call."""
    return _new_stream


@pytest.fixture
def make_events() -> Callable[..., list[Envelope]]:
    """Envelopes for `stream_id` numbered after `expected_version`: make_events(s, v, count)."""
    return _make_events

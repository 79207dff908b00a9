"""The tailer over the real MongoEventStore (`StoreSource`) with its checkpoint in MongoDB:
every event applied once, in `producer_seq` order, while writers append; resumed after a
restart from the stored checkpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.kafka_testing import wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.tailer import CHECKPOINT_COLLECTION, MongoCheckpoint, StoreSource, Tailer

PRODUCER = "tailsvc"


def event(stream_id: str, version: int) -> Envelope:
    return Envelope(
        event_type=f"{PRODUCER}.Ticked",
        schema_version=1,
        producer=PRODUCER,
        stream_id=stream_id,
        stream_version=version,
        action="update",
        resource=Resource(type="thing", id=stream_id),
        data={"v": version},
    )


async def append_events(store: MongoEventStore, streams: int, per_stream: int) -> None:
    async def one_stream() -> None:
        stream = f"thing-{uuid.uuid4().hex[:10]}"
        for version in range(1, per_stream + 1):
            await store.append(stream, version - 1, [event(stream, version)])

    await asyncio.gather(*(one_stream() for _ in range(streams)))


async def test_store_source_tails_a_mongo_event_store_and_resumes(mongo_db: Any) -> None:
    store = MongoEventStore(mongo_db, PRODUCER, max_read_window=10, poll_interval=0.05)
    await store.ensure_indexes()
    await append_events(store, streams=5, per_stream=6)  # 30 before the tailer starts
    applied: list[int] = []

    async def apply(events: Sequence[Envelope]) -> None:
        applied.extend(e.producer_seq or 0 for e in events)

    checkpoints = mongo_db[CHECKPOINT_COLLECTION]
    name = f"test-{uuid.uuid4().hex[:8]}"
    tailer = Tailer(name, StoreSource(store), MongoCheckpoint(checkpoints, name), apply, window=500)
    assert tailer.window == 10  # bounded by the store's read window
    task = asyncio.create_task(tailer.run())
    try:
        await wait_until(lambda: tailer.status.checkpoint == 30, what="caught up")
        await append_events(store, streams=4, per_stream=5)  # 20 more while it runs
        await wait_until(lambda: tailer.status.checkpoint == 50, what="followed the appends")
        assert await tailer.lag() == 0
    finally:
        await tailer.stop()
        await task
    assert applied == list(range(1, 51))  # once each, in order, nothing skipped
    doc = await checkpoints.find_one({"_id": name})
    assert doc is not None and doc["checkpoint"] == 50

    # A restart resumes after the stored checkpoint; a stale save cannot move it back.
    await append_events(store, streams=1, per_stream=3)
    resumed: list[int] = []

    async def apply_again(events: Sequence[Envelope]) -> None:
        resumed.extend(e.producer_seq or 0 for e in events)

    checkpoint = MongoCheckpoint(checkpoints, name)
    again = Tailer(name, StoreSource(store), checkpoint, apply_again)
    assert await again.load() == 50
    assert await again.step() == 3
    assert resumed == [51, 52, 53]
    assert await checkpoint.save(10)
    assert await checkpoint.load() == 53
    assert await MongoCheckpoint(checkpoints, f"{name}-new").load() == 0

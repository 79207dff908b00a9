"""MongoEventStore against the real local database: gapless sequences under load, bounded reads."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.errors import ConcurrencyError
from mmgen.events.mongo_store import MongoEventStore

PRODUCER = "loadsvc"


def one_event(stream_id: str, version: int) -> Envelope:
    return Envelope(
        event_type="loadsvc.Ticked",
        schema_version=1,
        producer=PRODUCER,
        stream_id=stream_id,
        stream_version=version,
        action="update",
        resource=Resource(type="thing", id=stream_id),
        data={"v": version},
    )


async def writer(
    stores: list[MongoEventStore], streams: list[str], appends: int, rng: random.Random
) -> list[Envelope]:
    """Append `appends` single events to random streams, retrying on conflicts like a service."""
    done: list[Envelope] = []
    while len(done) < appends:
        store = rng.choice(stores)
        stream = rng.choice(streams)
        version = await store.stream_version(stream)
        try:
            stored = await store.append(stream, version, [one_event(stream, version + 1)])
        except ConcurrencyError:
            continue
        done.extend(stored)
    return done


async def read_all(store: MongoEventStore, last: int) -> list[Envelope]:
    out: list[Envelope] = []
    for start in range(1, last + 1, store.max_read_window):
        out.extend(await store.read_range(start, min(start + store.max_read_window, last + 1)))
    return out


def assert_commit_order(per_writer: list[list[Envelope]], everything: list[Envelope]) -> None:
    # Gapless, no duplicate:
    assert [e.producer_seq for e in everything] == list(range(1, len(everything) + 1))
    # Each writer awaited its appends one after another: their sequences increase.
    for appended in per_writer:
        seqs = [e.producer_seq or 0 for e in appended]
        assert seqs == sorted(seqs)
    # Within a stream, a later version was committed later.
    by_stream: dict[str, list[Envelope]] = {}
    for event in everything:
        by_stream.setdefault(event.stream_id, []).append(event)
    for events in by_stream.values():
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))


@pytest.mark.slow
async def test_20_writers_200_appends_50_streams_give_exactly_1_to_4000(mongo_db: Any) -> None:
    store = MongoEventStore(mongo_db, PRODUCER, max_read_window=1000)
    await store.ensure_indexes()
    streams = [f"s-{uuid.uuid4().hex}" for _ in range(50)]
    per_writer = await asyncio.gather(
        *(writer([store], streams, 200, random.Random(i)) for i in range(20))
    )
    assert await store.last_seq() == 4000
    everything = await read_all(store, 4000)
    assert len(everything) == 4000
    assert_commit_order(per_writer, everything)
    loaded = [await store.load(s) for s in streams]
    assert sum(len(events) for events in loaded) == 4000
    assert await mongo_db[store.events.name].count_documents({}) == 4000
    # Group commit did group: far fewer transactions than appends.
    assert store.batches_committed < 4000
    await store.close()


class ConflictCounter(monitoring.CommandListener):
    """Counts commands that failed with a write conflict (the driver then retries the txn)."""

    def __init__(self) -> None:
        self.conflicts = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if isinstance(event.failure, dict) and event.failure.get("code") == 112:
            self.conflicts += 1


@pytest.mark.slow
async def test_two_store_instances_on_one_database_stay_gapless(
    mongo_uri: str, mongo_db: Any
) -> None:
    """Two replicas of a service (own clients, own committers) write one producer's log.

    Their transactions write-conflict on the counter document; `with_transaction` re-runs the
    callback, which must not leave anything behind from the failed attempt.
    """
    counter = ConflictCounter()
    other: Any = AsyncMongoClient(mongo_uri, event_listeners=[counter])
    try:
        stores = [
            MongoEventStore(mongo_db, PRODUCER, max_read_window=1000),
            MongoEventStore(other[mongo_db.name], PRODUCER, max_read_window=1000),
        ]
        await stores[0].ensure_indexes()
        streams = [f"s-{uuid.uuid4().hex}" for _ in range(10)]
        per_writer = await asyncio.gather(
            *(writer(stores, streams, 40, random.Random(100 + i)) for i in range(10))
        )
        everything = await read_all(stores[1], 400)
        assert_commit_order(per_writer, everything)
        assert counter.conflicts > 0, "no write conflict happened: the retry path went untested"
        # A waiter on one instance learns of the other's commit by polling.
        waiter = asyncio.create_task(stores[1].wait_for_append(400, timeout=30))
        s = streams[0]
        version = await stores[0].stream_version(s)
        await stores[0].append(s, version, [one_event(s, version + 1)])
        assert await asyncio.wait_for(waiter, 10) == 401
        for store in stores:
            await store.close()
    finally:
        await other.close()


async def test_a_conflict_from_another_process_fails_only_its_own_append(mongo_db: Any) -> None:
    """Store B still believes the stream is at v1; the unique index catches it, mid-batch."""
    a = MongoEventStore(mongo_db, PRODUCER)
    b = MongoEventStore(mongo_db, PRODUCER)
    await a.ensure_indexes()
    stream = f"s-{uuid.uuid4().hex}"
    await a.append(stream, 0, [one_event(stream, 1)])
    assert await b.stream_version(stream) == 1
    await a.append(stream, 1, [one_event(stream, 2)])
    others = [f"o-{uuid.uuid4().hex}" for _ in range(5)]
    results = await asyncio.gather(
        *(b.append(o, 0, [one_event(o, 1)]) for o in others[:2]),
        b.append(stream, 1, [one_event(stream, 2)]),
        *(b.append(o, 0, [one_event(o, 1)]) for o in others[2:]),
        return_exceptions=True,
    )
    conflict = results.pop(2)
    assert isinstance(conflict, ConcurrencyError)
    assert (conflict.expected_version, conflict.actual_version) == (1, 2)
    assert all(isinstance(r, list) for r in results)
    everything = await read_all(b, await b.last_seq())
    assert [e.producer_seq for e in everything] == list(range(1, 8))
    assert [e.stream_version for e in await b.load(stream)] == [1, 2]
    await a.close()
    await b.close()


async def test_appends_at_versions_this_process_has_not_read(mongo_db: Any) -> None:
    """A version the store never saw is looked up, not taken for a conflict: another replica
    wrote it, or an append queued just before creates it."""
    a = MongoEventStore(mongo_db, PRODUCER)
    b = MongoEventStore(mongo_db, PRODUCER)
    await a.ensure_indexes()
    stream = f"s-{uuid.uuid4().hex}"
    await a.append(stream, 0, [one_event(stream, 1), one_event(stream, 2)])
    stored = await b.append(stream, 2, [one_event(stream, 3)])  # b never read the stream
    assert [e.producer_seq for e in stored] == [3]
    with pytest.raises(ConcurrencyError) as info:
        await b.append(stream, 1, [one_event(stream, 2)])
    assert (info.value.expected_version, info.value.actual_version) == (1, 3)
    with pytest.raises(ConcurrencyError) as info:
        await b.append(stream, 5, [one_event(stream, 6)])
    assert (info.value.expected_version, info.value.actual_version) == (5, 3)
    chained = f"s-{uuid.uuid4().hex}"
    first, second = await asyncio.gather(
        b.append(chained, 0, [one_event(chained, 1)]),
        b.append(chained, 1, [one_event(chained, 2)]),
    )
    assert (first[0].producer_seq, second[0].producer_seq) == (4, 5)
    assert [e.stream_version for e in await a.load(chained)] == [1, 2]
    await a.close()
    await b.close()


async def test_indexes_exist_and_are_unique(mongo_db: Any) -> None:
    store = MongoEventStore(mongo_db, PRODUCER)
    await store.ensure_indexes()
    await store.ensure_indexes()  # idempotent
    info = await store.events.index_information()
    keys = {tuple(k for k, _ in v["key"]): v.get("unique", False) for v in info.values()}
    assert len(keys) == 3  # each secondary index costs insert throughput: no more than needed
    assert keys[("stream_id", "stream_version")] is True
    assert keys[("producer_seq",)] is True
    assert ("_id",) in keys  # _id is the event id: unique by construction


class FindRecorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in {"find", "aggregate", "count", "findAndModify"}:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def is_bounded(command: dict[str, Any]) -> bool:
    """By key (`_id` equality or `$in`), or a closed window on an indexed field."""
    flt = command.get("filter", command.get("query", {}))
    if "_id" in flt:
        return True
    for field in ("producer_seq", "stream_version"):
        bound = flt.get(field)
        if (
            isinstance(bound, dict)
            and {"$gt", "$gte"} & bound.keys()
            and {"$lt", "$lte"} & bound.keys()
        ):
            return field != "stream_version" or isinstance(flt.get("stream_id"), str)
    return False


async def test_every_read_is_by_key_or_a_bounded_window(mongo_uri: str, mongo_db: Any) -> None:
    recorder = FindRecorder()
    client: Any = AsyncMongoClient(mongo_uri, event_listeners=[recorder])
    try:
        store = MongoEventStore(client[mongo_db.name], PRODUCER, max_read_window=100)
        await store.ensure_indexes()
        stream = f"s-{uuid.uuid4().hex}"
        for v in range(0, 2500, 500):
            await store.append(stream, v, [one_event(stream, v + i + 1) for i in range(500)])
        await asyncio.gather(
            *(store.append(f"x-{i}", 0, [one_event(f"x-{i}", 1)]) for i in range(10))
        )
        assert len(await store.load(stream)) == 2500
        assert len(await store.load(stream, after_version=100, up_to_version=1200)) == 1100
        assert len(await store.read_range(1, 101)) == 100
        await store.get(str(uuid.uuid4()))
        await store.stream_version(stream)
        await store.wait_for_append(2510, timeout=0.1)
        await store.close()
    finally:
        await client.close()
    assert recorder.commands, "the listener saw no reads"
    unbounded = [c for c in recorder.commands if not is_bounded(c)]
    assert unbounded == []
    # find_one sends limit 1: harmless on a key lookup, and only there.
    assert all("limit" not in c or "_id" in c.get("filter", {}) for c in recorder.commands)


async def test_append_in_a_transaction_commits_and_rolls_back_with_it(mongo_db: Any) -> None:
    store = MongoEventStore(mongo_db, "loadsvc")
    await store.ensure_indexes()
    await store.append("other", 0, [one_event("other", 1)])
    stream = f"s-{uuid.uuid4()}"

    class Abort(Exception):
        pass

    async def aborted(session: Any) -> None:
        await mongo_db["side_effects"].insert_one({"_id": 1}, session=session)
        await store.append_in(session, stream, 0, [one_event(stream, 1)])
        raise Abort

    async with mongo_db.client.start_session() as session:
        with pytest.raises(Abort):
            await session.with_transaction(aborted)
    assert await store.stream_version(stream) == 0
    assert await mongo_db["side_effects"].count_documents({}) == 0
    assert await store.last_seq() == 1  # the counter rolled back too: no gap

    async def txn(session: Any) -> list[Envelope]:
        await mongo_db["side_effects"].insert_one({"_id": 2}, session=session)
        return await store.append_in(session, stream, 0, [one_event(stream, 1)])

    async with mongo_db.client.start_session() as session:
        stored = await session.with_transaction(txn)
    assert [e.producer_seq for e in stored] == [2]
    assert await mongo_db["side_effects"].count_documents({}) == 1
    assert (await store.load(stream))[0].producer_seq == 2

    async def conflicting(session: Any) -> list[Envelope]:
        return await store.append_in(session, stream, 0, [one_event(stream, 1)])

    async with mongo_db.client.start_session() as session:
        with pytest.raises(ConcurrencyError):
            await session.with_transaction(conflicting)

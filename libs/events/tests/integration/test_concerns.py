"""What hands out seqs reads and writes with `majority`: the commands on the wire say so.

The event store's counter and events, the relay's lease and checkpoint, the transactions of the
event store and the inbox (which may append inside them), and the keystore's keys and erasure
markers — checked on the commands the driver sends to the real database, not on the objects
that should have sent them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mmgen.events.concerns import durable_session
from mmgen.events.envelope import Envelope, Resource
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.mongo_testing import MAJORITY_READ, MAJORITY_WRITE, CommandLog, watched_database
from mmgen.events.relay import LeaseStore

PRODUCER = "concernsvc"


@pytest.fixture
async def watched(mongo_uri: str, mongo_db: Any) -> AsyncIterator[tuple[Any, CommandLog]]:
    """The test's database through a client whose every command is recorded."""
    async with watched_database(mongo_uri, mongo_db.name) as watching:
        yield watching


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


async def test_the_event_stores_transaction_reads_and_commits_with_majority(
    watched: tuple[Any, CommandLog],
) -> None:
    db, commands = watched
    store = MongoEventStore(db, PRODUCER)
    await store.ensure_indexes()
    commands.clear()
    stream = f"s-{uuid.uuid4().hex[:8]}"
    await store.append(stream, 0, [event(stream, 1), event(stream, 2)])

    (take_seq,) = commands.named("findAndModify", "events_counters")
    assert take_seq["readConcern"] == MAJORITY_READ  # the transaction's first command
    (commit,) = commands.named("commitTransaction")
    assert commit["writeConcern"] == MAJORITY_WRITE
    await store.close()


async def test_the_stores_reads_behind_seqs_use_majority(watched: tuple[Any, CommandLog]) -> None:
    db, commands = watched
    store = MongoEventStore(db, PRODUCER)
    stream = f"s-{uuid.uuid4().hex[:8]}"
    await store.append(stream, 0, [event(stream, 1)])
    commands.clear()
    assert await store.last_seq() == 1
    assert [e.producer_seq for e in await store.read_range(1, 2)] == [1]  # what the relay reads
    finds = commands.named("find")
    assert {c["find"] for c in finds} == {"events_counters", "events"}
    assert all(c["readConcern"] == MAJORITY_READ for c in finds), finds
    await store.close()


async def test_append_in_a_durable_session_commits_with_majority(
    watched: tuple[Any, CommandLog],
) -> None:
    db, commands = watched
    store = MongoEventStore(db, PRODUCER)
    stream = f"s-{uuid.uuid4().hex[:8]}"
    commands.clear()

    async def work(session: Any) -> None:
        await store.append_in(session, stream, 0, [event(stream, 1)])

    async with durable_session(db.client) as session:
        await session.with_transaction(work)
    (commit,) = commands.named("commitTransaction")
    assert commit["writeConcern"] == MAJORITY_WRITE
    assert commands.sent[0]["readConcern"] == MAJORITY_READ
    await store.close()


async def test_the_relays_lease_and_checkpoint_use_majority(
    watched: tuple[Any, CommandLog],
) -> None:
    db, commands = watched
    leases = LeaseStore(db, PRODUCER)
    got = await leases.acquire("owner-a", 10.0)
    assert got is not None
    assert await leases.advance("owner-a", got[0], 5, 10.0)
    assert (await leases.state() or {}).get("checkpoint") == 5
    (acquire,) = commands.named("findAndModify", "relay_state")
    (advance,) = commands.named("update", "relay_state")
    (state,) = commands.named("find", "relay_state")
    assert acquire["writeConcern"] == MAJORITY_WRITE
    assert advance["writeConcern"] == MAJORITY_WRITE
    assert state["readConcern"] == MAJORITY_READ


async def test_the_keystore_mints_reads_and_shreds_with_majority(
    watched: tuple[Any, CommandLog],
) -> None:
    db, commands = watched
    keystore = MongoKeystore(db, MasterKeyring(MasterKey.generate()))
    owner = f"user:{uuid.uuid4()}"
    key = await keystore.key_for_write(owner)
    (mint,) = commands.named("insert", "keystore")
    assert mint["writeConcern"] == MAJORITY_WRITE
    keystore.invalidate(owner)
    assert await keystore.key_for_read(owner, key.key_id) is not None
    finds = commands.named("find", "keystore")
    assert len(finds) == 2 and all(c["readConcern"] == MAJORITY_READ for c in finds), finds

    commands.clear()
    assert await keystore.shred(owner) is True
    (shred,) = commands.named("findAndModify", "keystore")
    assert shred["writeConcern"] == MAJORITY_WRITE
    commands.clear()
    assert await keystore.shred(owner, by="a later order") is False  # the marker's path
    (seen, marked) = commands.named("findAndModify", "keystore")
    assert seen["writeConcern"] == MAJORITY_WRITE
    assert marked["writeConcern"] == MAJORITY_WRITE

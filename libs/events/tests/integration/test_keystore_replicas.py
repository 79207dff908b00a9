"""Shredding holds across replicas sharing one database, and against a fetch straddling it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from mmgen.events.errors import OwnerErasedError
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore

POLL_S = 0.2


@pytest.fixture
def keyring() -> MasterKeyring:
    return MasterKeyring(MasterKey.generate("mk-1"))


async def test_another_replica_reads_the_owner_as_erased_within_the_poll_bound(
    mongo_db: Any, keyring: MasterKeyring
) -> None:
    a = MongoKeystore(mongo_db, keyring, erasure_poll_seconds=POLL_S)
    b = MongoKeystore(mongo_db, keyring)
    await a.ensure_indexes()
    owner = f"subject:{uuid.uuid4()}"
    key = await a.key_for_write(owner)
    watcher = asyncio.create_task(a.watch_erasures())
    try:
        assert await a.key_for_read(owner, key.key_id) == key  # cached, confirmed
        assert await b.shred(owner)
        shredded_at = time.monotonic()
        while await a.key_for_read(owner, key.key_id) is not None:
            assert time.monotonic() - shredded_at < 10 * POLL_S, "still readable on A"
            await asyncio.sleep(POLL_S / 10)
        # The stated bound: one poll interval and a database round trip.
        assert time.monotonic() - shredded_at < 2 * POLL_S + 0.5
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def test_without_a_confirming_watcher_cached_keys_are_not_trusted(
    mongo_db: Any, keyring: MasterKeyring
) -> None:
    a = MongoKeystore(mongo_db, keyring, erasure_poll_seconds=POLL_S)
    b = MongoKeystore(mongo_db, keyring)
    owner = f"subject:{uuid.uuid4()}"
    key = await a.key_for_write(owner)
    watcher = asyncio.create_task(a.watch_erasures())
    await asyncio.sleep(POLL_S)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await b.shred(owner)
    # The cache still holds the key, but nothing confirms it: A asks the database.
    assert owner in a.cache
    assert await a.key_for_read(owner, key.key_id) is None


async def test_a_fetch_straddling_a_shred_does_not_bring_the_key_back(
    mongo_db: Any, keyring: MasterKeyring
) -> None:
    keystore = MongoKeystore(mongo_db, keyring)
    owner = f"subject:{uuid.uuid4()}"
    key = await MongoKeystore(mongo_db, keyring).key_for_write(owner)
    fetched, release = asyncio.Event(), asyncio.Event()
    real_find_one = keystore.keys.find_one

    async def delayed_find_one(*args: Any, **kwargs: Any) -> Any:
        doc = await real_find_one(*args, **kwargs)  # reads the live key ...
        fetched.set()
        await release.wait()  # ... and returns only after the shred
        return doc

    keystore.keys.find_one = delayed_find_one  # type: ignore[method-assign]
    read = asyncio.create_task(keystore.key_for_read(owner, key.key_id))
    await fetched.wait()
    keystore.keys.find_one = real_find_one  # type: ignore[method-assign]
    assert await keystore.shred(owner)
    release.set()
    await read  # the straddling read began before the shred: it may see the old key once
    assert owner not in keystore.cache  # but it must not cache it
    assert await keystore.key_for_read(owner, key.key_id) is None


class CountingFinds:
    """The keystore's collection, counting `find_one` round trips."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.finds = 0

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        self.finds += 1
        return await self.collection.find_one(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)


async def test_an_owner_seen_erased_is_read_as_erased_without_asking_the_database_again(
    mongo_db: Any, keyring: MasterKeyring
) -> None:
    """An erasure is for good: reading an erased subject's history (a footprint or an export
    decrypts every event) costs one round trip, not one per event — on the replica that
    shredded and on one that learnt it from the marker."""
    shredder = MongoKeystore(mongo_db, keyring)
    reader = MongoKeystore(mongo_db, keyring)
    owner = f"subject:{uuid.uuid4()}"
    key = await shredder.key_for_write(owner)
    assert await reader.key_for_read(owner, key.key_id) == key
    assert await shredder.shred(owner)
    reader.invalidate(owner)  # as its erasure watcher would

    shredder.keys = counted_shredder = CountingFinds(shredder.keys)
    reader.keys = counted_reader = CountingFinds(reader.keys)
    for _ in range(50):
        assert await shredder.key_for_read(owner, key.key_id) is None
        assert await reader.key_for_read(owner, key.key_id) is None
        assert await reader.is_erased(owner)
    assert counted_shredder.finds == 0
    assert counted_reader.finds == 1
    # Writes still read the marker every time, and refuse.
    with pytest.raises(OwnerErasedError):
        await reader.key_for_write(owner)
    # A live owner's key is still read from the database when not cached.
    other = f"subject:{uuid.uuid4()}"
    other_key = await shredder.key_for_write(other)
    assert await reader.key_for_read(other, other_key.key_id) == other_key


async def test_the_memory_of_erased_owners_is_bounded(
    mongo_db: Any, keyring: MasterKeyring
) -> None:
    keystore = MongoKeystore(mongo_db, keyring, erased_memory=3)
    owners = [f"subject:{uuid.uuid4()}" for _ in range(5)]
    for owner in owners:
        await keystore.key_for_write(owner)
        await keystore.shred(owner)
    assert list(keystore._erased) == owners[2:]
    # Forgotten ones are still erased: asked of the database, and remembered again.
    assert await keystore.is_erased(owners[0])
    assert list(keystore._erased) == [*owners[3:], owners[0]]

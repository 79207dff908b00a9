"""Shredding holds across replicas sharing one database, and against a fetch straddling it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

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

"""The Keystore contract (minting, shredding, erased markers, rotation), fake and real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mmgen.events.errors import (
    DataKeyMissingError,
    KeystoreError,
    MasterKeyUnknownError,
    OwnerErasedError,
)
from mmgen.events.keys import InMemoryKeystore, Keystore, MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore

OpenKeystore = Callable[[MasterKeyring], Keystore]


@pytest.fixture(params=["memory", "mongo"])
async def open_keystore(request: pytest.FixtureRequest, mongo_db: Any) -> OpenKeystore:
    """Opens a keystore over ONE shared storage: each call is like another process starting."""
    if request.param == "memory":
        storage: dict[str, Any] = {}
        return lambda keyring: InMemoryKeystore(keyring, storage=storage)
    await MongoKeystore(mongo_db, MasterKeyring(MasterKey.generate())).ensure_indexes()
    return lambda keyring: MongoKeystore(mongo_db, keyring, buckets=16)


def owner() -> str:
    return f"subject:{uuid.uuid4()}"


@pytest.fixture
def keyring() -> MasterKeyring:
    return MasterKeyring(MasterKey.generate("mk-1"))


async def test_a_key_is_minted_once_and_found_again(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    who = owner()
    key = await ks.key_for_write(who)
    assert len(key.key) == 32
    assert await ks.key_for_write(who) == key
    other = open_keystore(keyring)  # no cache: reads the stored, wrapped key
    assert await other.key_for_read(who, key.key_id) == key
    assert await other.key_for_write(who) == key
    assert (await ks.key_for_write(owner())).key != key.key


async def test_concurrent_first_writes_agree_on_one_key(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    who = owner()
    keys = await asyncio.gather(*(open_keystore(keyring).key_for_write(who) for _ in range(8)))
    assert len({k.key_id for k in keys}) == 1


async def test_a_key_missing_without_erasure_is_an_error(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    with pytest.raises(DataKeyMissingError):
        await ks.key_for_read(owner(), "dk-none")
    who = owner()
    await ks.key_for_write(who)
    with pytest.raises(DataKeyMissingError):
        await ks.key_for_read(who, "dk-some-other-key")
    with pytest.raises(KeystoreError):
        await ks.key_for_write("not an owner")


async def test_shred_deletes_the_key_keeps_a_marker_and_never_mints_again(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    heard: list[str] = []

    async def listener(who: str) -> None:
        heard.append(who)

    ks.add_shred_listener(listener)
    who, bystander = owner(), owner()
    key = await ks.key_for_write(who)
    kept = await ks.key_for_write(bystander)
    assert await ks.shred(who) is True
    assert heard == [who]
    assert await ks.is_erased(who)
    assert not await ks.is_erased(bystander)
    for store in (ks, open_keystore(keyring)):
        assert await store.key_for_read(who, key.key_id) is None
        with pytest.raises(OwnerErasedError):
            await store.key_for_write(who)
        assert await store.key_for_read(bystander, kept.key_id) == kept
    assert await ks.shred(who) is False  # idempotent


async def test_a_second_attempt_at_the_same_order_still_counts_the_key_it_shredded(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    """An erasure that shredded the key and then failed is run again: its answer must still
    say one key shredded. Another order, later, shredded nothing."""
    ks = open_keystore(keyring)
    who, never_keyed = owner(), owner()
    await ks.key_for_write(who)
    assert await ks.shred(who, by="order-1") is True
    assert await open_keystore(keyring).shred(who, by="order-1") is True  # another replica
    assert await ks.shred(who, by="order-2") is False
    assert await ks.shred(who) is False
    assert await ks.shred(who, by="order-1") is True  # a later order did not take it over
    assert await ks.shred(never_keyed, by="order-1") is False
    assert await ks.shred(never_keyed, by="order-1") is False  # a marker, but no key was there


async def test_shredding_an_unknown_owner_still_blocks_future_keys(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    who = owner()
    assert await ks.shred(who) is False
    with pytest.raises(OwnerErasedError):
        await ks.key_for_write(who)


async def test_shred_evicts_the_cache_of_the_shredding_process(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    who = owner()
    key = await ks.key_for_write(who)
    assert await ks.key_for_read(who, key.key_id) == key  # cached now
    await ks.shred(who)
    assert await ks.key_for_read(who, key.key_id) is None


async def test_another_process_shred_is_seen_after_invalidate(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    reader, eraser = open_keystore(keyring), open_keystore(keyring)
    who = owner()
    key = await reader.key_for_write(who)
    await eraser.shred(who)
    reader.invalidate(who)  # what a SubjectErased consumer does
    assert await reader.key_for_read(who, key.key_id) is None


async def test_master_key_rotation_rewraps_every_data_key(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    ks = open_keystore(keyring)
    owners = [owner() for _ in range(20)]
    keys = {w: await ks.key_for_write(w) for w in owners}
    await ks.shred(owners[0])
    new = MasterKey.generate("mk-2")
    # Without the old key, nothing unwraps:
    with pytest.raises(MasterKeyUnknownError):
        await open_keystore(MasterKeyring(new)).key_for_read(owners[1], keys[owners[1]].key_id)
    rotating = open_keystore(MasterKeyring(new, retired=[keyring.current]))
    assert await rotating.rotate_master_key() == 19
    assert await rotating.rotate_master_key() == 0
    after = open_keystore(MasterKeyring(new))  # the old master key is gone for good
    for w in owners[1:]:
        assert await after.key_for_read(w, keys[w].key_id) == keys[w]
    assert await after.key_for_read(owners[0], keys[owners[0]].key_id) is None


async def test_a_replica_refuses_to_seal_for_an_owner_another_replica_erased(
    open_keystore: OpenKeystore, keyring: MasterKeyring
) -> None:
    a, b = open_keystore(keyring), open_keystore(keyring)
    who = owner()
    await a.key_for_write(who)  # A has the key cached
    assert await b.shred(who)
    with pytest.raises(OwnerErasedError):
        await a.key_for_write(who)  # at once, although A's cache still held the key

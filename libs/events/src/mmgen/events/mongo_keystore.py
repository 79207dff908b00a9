"""`MongoKeystore`: per-owner data keys in the service's own database, wrapped under the master key.

One document per owner, `_id` = owner:
`{key_id, state: "active", master_key_id, nonce, wrapped, bucket, created_at}` while the key
lives; `{state: "erased", erased_at, erased_by?, bucket}` after `shred` — the key bytes are gone and
the marker stays, so `key_for_write` refuses to mint a new key for the owner (a racing mint
and shred both write the same `_id`, so one of them sees the other).
Lookups are by `_id`; master-key rotation walks the collection bucket by bucket (an indexed
equality per bucket), so no read is an open-ended scan.

Shredding holds across replicas of a service sharing the database:
- writes: `key_for_write` reads the owner's marker on every call, cached key or not, so no
  replica seals new personal data for an owner another replica erased, not even once;
- reads: `watch_erasures()` (run by the service runtime) looks for new erasure markers every
  `erasure_poll_seconds` and evicts those owners' cached keys, so a replica reads a subject
  as erased within that bound (plus one database round trip). While the watcher has not
  confirmed within `2 x erasure_poll_seconds` (database unreachable, watcher stopped), cached
  keys are not trusted: reads go to the database, and fail rather than guess if it is down;
- a fetch that straddles a shred in the same process never re-caches the key (generations).

`shred(owner, by=order)` names the order (an erasure command's id) on the marker of the key it
destroyed, so a second attempt at the same order — the first destroyed the key and then
failed, or the database ran the write twice — still reports that key as shredded by it, and
an erasure's answer does not say "nothing shredded" because of a retry.

An erasure is for good (the marker is never removed, no key is minted again), so owners seen
erased are remembered (up to `erased_memory` of them, least recently seen forgotten first):
reading a shredded subject's history asks the database once, not once per event — an
erasure's footprint and export read every event of the subject, so a subject with 1,000
events cost 1,000 round trips per footprint, and the erasure's check grew with the history
that crypto-shredding had made irrelevant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.concerns import durable
from mmgen.events.envelope import utc_now
from mmgen.events.errors import DataKeyMissingError, KeystoreError, OwnerErasedError
from mmgen.events.keys import (
    DataKey,
    KeystoreBase,
    MasterKeyring,
    WrappedKey,
    bucket_of,
    check_owner,
    new_data_key,
    unwrap,
    wrap,
)

log = logging.getLogger(__name__)

ACTIVE = "active"
ERASED = "erased"
#: Rounds of "shred the live key, else leave a marker" while keys are minted in between.
_SHRED_ATTEMPTS = 5


class MongoKeystore(KeystoreBase):
    """The `Keystore` port on MongoDB. Call `ensure_indexes()` once at start."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        keyring: MasterKeyring,
        *,
        collection: str = "keystore",
        cache_ttl_seconds: float = 30.0,
        buckets: int = 256,
        erasure_poll_seconds: float = 1.0,
        erased_memory: int = 100_000,
    ) -> None:
        super().__init__(keyring, cache_ttl_seconds)
        # Majority (concerns.py): a minted key or an erasure marker rolled back by a failover
        # would be a key another replica already sealed data with, or a shred undone.
        self.keys = durable(db[collection])
        self._buckets = buckets
        self.erasure_poll_seconds = erasure_poll_seconds
        #: Owners seen erased (for good), most recently seen last; at most `erased_memory`.
        self._erased: OrderedDict[str, None] = OrderedDict()
        self._erased_memory = erased_memory
        #: Monotonic time the erasure watcher last confirmed; None: no watcher (cache as is).
        self._confirmed_at: float | None = None

    async def ensure_indexes(self) -> None:
        await self.keys.create_index([("bucket", ASCENDING)], name="bucket")
        await self.keys.create_index([("erased_at", ASCENDING)], name="erased_at", sparse=True)

    # --- erasures by other replicas ----------------------------------------------------------

    def _cache_trusted(self) -> bool:
        if self._confirmed_at is None:
            return True
        return time.monotonic() - self._confirmed_at <= 2 * self.erasure_poll_seconds

    async def poll_erasures(self, since: Any) -> Any:
        """Evict owners erased since `since` (a UTC datetime); returns the new watermark."""
        started = utc_now()
        cursor = self.keys.find(
            {"erased_at": {"$gte": since}}, projection={"_id": 1, "erased_at": 1}
        )
        async for doc in cursor:
            self.invalidate(str(doc["_id"]))
            self._remember_erased(str(doc["_id"]))
        self._confirmed_at = time.monotonic()
        # Markers are stamped by other replicas' clocks: look back a margin for skew.
        return started - timedelta(seconds=5)

    async def watch_erasures(self) -> None:
        """Run until cancelled: evict keys of owners erased anywhere, every poll interval."""
        since = utc_now() - timedelta(seconds=5)
        self._confirmed_at = time.monotonic()
        try:
            while True:
                try:
                    since = await self.poll_erasures(since)
                except Exception:  # noqa: BLE001 - cached keys stop being trusted meanwhile
                    log.warning("keystore erasure watch failed; cached keys untrusted")
                await asyncio.sleep(self.erasure_poll_seconds)
        finally:
            self._confirmed_at = 0.0  # stopped: never trust the cache again without a watcher

    async def key_for_write(self, owner: str) -> DataKey:
        check_owner(owner)
        generation = self.cache.generation(owner)
        doc = await self.keys.find_one({"_id": owner})
        if doc is not None and doc["state"] == ERASED:
            self.invalidate(owner)
            raise OwnerErasedError(owner)  # checked on every write, cached key or not
        cached = self.cache.get(owner)
        if cached is not None:
            return cached
        if doc is None:
            key = new_data_key(owner)
            stored = wrap(self.keyring.current, key)
            try:
                await self.keys.insert_one(
                    {
                        "_id": owner,
                        "state": ACTIVE,
                        "key_id": key.key_id,
                        "master_key_id": stored.master_key_id,
                        "nonce": stored.nonce,
                        "wrapped": stored.wrapped,
                        "bucket": bucket_of(owner, self._buckets),
                        "created_at": utc_now(),
                    }
                )
            except DuplicateKeyError:
                # Another writer minted (or shredded) it first: use what is stored.
                doc = await self.keys.find_one({"_id": owner})
            else:
                self.cache.put(key, generation=generation)
                return key
        if doc is None:
            raise DataKeyMissingError(owner)
        if doc["state"] == ERASED:
            raise OwnerErasedError(owner)
        key = unwrap(self.keyring, _wrapped(doc))
        self.cache.put(key, generation=generation)
        return key

    def _remember_erased(self, owner: str) -> None:
        self._erased[owner] = None
        self._erased.move_to_end(owner)
        while len(self._erased) > self._erased_memory:
            self._erased.popitem(last=False)

    def _known_erased(self, owner: str) -> bool:
        if owner not in self._erased:
            return False
        self._erased.move_to_end(owner)
        return True

    async def key_for_read(self, owner: str, key_id: str) -> DataKey | None:
        if self._known_erased(owner):
            return None
        cached = self.cache.get(owner) if self._cache_trusted() else None
        if cached is not None:
            return self._checked(owner, key_id, cached)
        generation = self.cache.generation(owner)
        doc = await self.keys.find_one({"_id": owner})
        if doc is None:
            log.error("no data key and no erasure marker for %s (key %s)", owner, key_id)
            raise DataKeyMissingError(owner, key_id)
        if doc["state"] == ERASED:
            self._remember_erased(owner)
            return None
        key = unwrap(self.keyring, _wrapped(doc))
        self.cache.put(key, generation=generation)
        return self._checked(owner, key_id, key)

    async def shred(self, owner: str, by: str | None = None) -> bool:
        check_owner(owner)
        bucket = bucket_of(owner, self._buckets)
        for _ in range(_SHRED_ATTEMPTS):
            # A live key: destroyed, and the marker says when and under which order.
            live = await self.keys.find_one_and_update(
                {"_id": owner, "state": ACTIVE},
                {
                    "$set": {
                        "state": ERASED,
                        "bucket": bucket,
                        "erased_at": utc_now(),
                        **({"erased_by": by} if by is not None else {}),
                    },
                    "$unset": {"wrapped": "", "nonce": "", "master_key_id": "", "key_id": ""},
                },
            )
            if live is not None:
                shredded = True
                break
            # No live key: leave a marker if there is none, so no key is ever minted for it.
            try:
                before = await self.keys.find_one_and_update(
                    {"_id": owner},
                    {"$setOnInsert": {"state": ERASED, "bucket": bucket, "erased_at": utc_now()}},
                    upsert=True,
                )
            except DuplicateKeyError:
                continue  # a key was minted meanwhile: shred that one
            if before is None or before.get("state") == ERASED:
                # Erased before: by this order when it says so (a second attempt at the same
                # order, whose first attempt destroyed the key and failed later on).
                shredded = by is not None and before is not None and before.get("erased_by") == by
                break
            # A key was minted between the two writes: shred that one.
        else:
            raise KeystoreError(f"shredding {owner} kept racing key creation")
        await self._after_shred(owner)
        self._remember_erased(owner)
        return shredded

    async def is_erased(self, owner: str) -> bool:
        if self._known_erased(owner):
            return True
        doc = await self.keys.find_one({"_id": owner}, {"state": 1})
        erased = doc is not None and doc["state"] == ERASED
        if erased:
            self._remember_erased(owner)
        return erased

    async def rotate_master_key(self) -> int:
        current = self.keyring.current
        count = 0
        for bucket in range(self._buckets):
            cursor = self.keys.find(
                {"bucket": bucket, "state": ACTIVE, "master_key_id": {"$ne": current.key_id}}
            )
            async for doc in cursor:
                key = unwrap(self.keyring, _wrapped(doc))
                stored = wrap(current, key)
                result = await self.keys.update_one(
                    {"_id": doc["_id"], "state": ACTIVE, "master_key_id": doc["master_key_id"]},
                    {
                        "$set": {
                            "master_key_id": stored.master_key_id,
                            "nonce": stored.nonce,
                            "wrapped": stored.wrapped,
                        }
                    },
                )
                count += result.modified_count
                self.cache.evict(doc["_id"])
        return count


def _wrapped(doc: dict[str, Any]) -> WrappedKey:
    return WrappedKey(
        owner=doc["_id"],
        key_id=doc["key_id"],
        master_key_id=doc["master_key_id"],
        nonce=bytes(doc["nonce"]),
        wrapped=bytes(doc["wrapped"]),
    )

"""`MongoKeystore`: per-owner data keys in the service's own database, wrapped under the master key.

One document per owner, `_id` = owner:
`{key_id, state: "active", master_key_id, nonce, wrapped, bucket, created_at}` while the key
lives; `{state: "erased", erased_at, bucket}` after `shred` — the key bytes are gone and the
marker stays, so `key_for_write` refuses to mint a new key for the owner (a racing mint
and shred both write the same `_id`, so one of them sees the other).
Lookups are by `_id`; master-key rotation walks the collection bucket by bucket (an indexed
equality per bucket), so no read is an open-ended scan.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import utc_now
from mmgen.events.errors import DataKeyMissingError, OwnerErasedError
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
    ) -> None:
        super().__init__(keyring, cache_ttl_seconds)
        self.keys = db[collection]
        self._buckets = buckets

    async def ensure_indexes(self) -> None:
        await self.keys.create_index([("bucket", ASCENDING)], name="bucket")

    async def key_for_write(self, owner: str) -> DataKey:
        check_owner(owner)
        cached = self.cache.get(owner)
        if cached is not None:
            return cached
        doc = await self.keys.find_one({"_id": owner})
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
                self.cache.put(key)
                return key
        if doc is None:
            raise DataKeyMissingError(owner)
        if doc["state"] == ERASED:
            raise OwnerErasedError(owner)
        key = unwrap(self.keyring, _wrapped(doc))
        self.cache.put(key)
        return key

    async def key_for_read(self, owner: str, key_id: str) -> DataKey | None:
        cached = self.cache.get(owner)
        if cached is not None:
            return self._checked(owner, key_id, cached)
        doc = await self.keys.find_one({"_id": owner})
        if doc is None:
            log.error("no data key and no erasure marker for %s (key %s)", owner, key_id)
            raise DataKeyMissingError(owner, key_id)
        if doc["state"] == ERASED:
            return None
        key = unwrap(self.keyring, _wrapped(doc))
        self.cache.put(key)
        return self._checked(owner, key_id, key)

    async def shred(self, owner: str) -> bool:
        check_owner(owner)
        before = await self.keys.find_one_and_update(
            {"_id": owner},
            {
                "$set": {
                    "state": ERASED,
                    "bucket": bucket_of(owner, self._buckets),
                },
                "$unset": {"wrapped": "", "nonce": "", "master_key_id": "", "key_id": ""},
                "$setOnInsert": {"erased_at": utc_now()},
            },
            upsert=True,
        )
        existed = before is not None and before.get("state") == ACTIVE
        if existed:  # first shred of a live key: the marker records when the key went
            await self.keys.update_one({"_id": owner}, {"$set": {"erased_at": utc_now()}})
        await self._after_shred(owner)
        return existed

    async def is_erased(self, owner: str) -> bool:
        doc = await self.keys.find_one({"_id": owner}, {"state": 1})
        return doc is not None and doc["state"] == ERASED

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

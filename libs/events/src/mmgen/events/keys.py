"""Keys for personal data: master keys from settings, per-owner data keys, the `Keystore` port.

- A **master key** (32 bytes, with a `key_id`) comes from the service's settings. A
  `MasterKeyring` holds the current one and any retired ones still needed to unwrap data keys
  until `rotate_master_key()` has re-wrapped them; events are never touched by a rotation.
- A **data key** (AES-256) per owner (`subject:<id>`, `project:<id>`) is minted on first
  write, wrapped under the current master key, and stored in the service's own database.
- `shred(owner)` deletes the data key and leaves an "erased" marker: the keystore refuses to
  mint a new key for that owner ever again (get-or-create code would otherwise resurrect it),
  drops it from the in-process cache, and calls the shred listeners (snapshot stores, read
  model caches) so nothing holding the owner's data outlives the key in this process.
- Reading with a key that is gone because of a shred yields `None` (the caller marks the data
  erased); a key missing for any other reason raises `DataKeyMissingError`.

`InMemoryKeystore` implements the port for unit tests; `MongoKeystore` (mongo_keystore.py) is
the real one. Both share the wrapping and caching code here.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mmgen.events.envelope import OWNER_PATTERN, utc_now
from mmgen.events.errors import (
    DataKeyMissingError,
    KeystoreError,
    MasterKeyUnknownError,
    OwnerErasedError,
    PersonalDataCorruptError,
)

log = logging.getLogger(__name__)

_OWNER = re.compile(OWNER_PATTERN)
KEY_BYTES = 32
NONCE_BYTES = 12
ShredListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class MasterKey:
    """A key-encryption key from settings. `repr` never shows the key."""

    key_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise KeystoreError(f"master key {self.key_id!r} must be {KEY_BYTES} bytes")
        if not self.key_id:
            raise KeystoreError("master key needs a key_id")

    @classmethod
    def from_base64(cls, key_id: str, value: str) -> MasterKey:
        """Build from the base64 text a settings field holds."""
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeystoreError(f"master key {key_id!r} is not valid base64") from exc
        return cls(key_id, raw)

    @classmethod
    def generate(cls, key_id: str | None = None) -> MasterKey:
        """A fresh random key (dev defaults, tests)."""
        return cls(key_id or f"mk-{uuid.uuid4().hex[:12]}", os.urandom(KEY_BYTES))


@dataclass(frozen=True)
class MasterKeyring:
    """The current master key plus retired ones still able to unwrap not-yet-rotated data keys."""

    current: MasterKey
    retired: Sequence[MasterKey] = ()

    @classmethod
    def from_settings(
        cls, current_key_id: str, current_key_b64: str, retired: Mapping[str, str] | None = None
    ) -> MasterKeyring:
        """From a service's settings: the current key and `{key_id: base64}` of retired ones."""
        return cls(
            MasterKey.from_base64(current_key_id, current_key_b64),
            tuple(MasterKey.from_base64(kid, value) for kid, value in (retired or {}).items()),
        )

    def get(self, key_id: str) -> MasterKey:
        if key_id == self.current.key_id:
            return self.current
        for key in self.retired:
            if key.key_id == key_id:
                return key
        raise MasterKeyUnknownError(key_id)


@dataclass(frozen=True)
class DataKey:
    """One owner's data key, unwrapped (lives only in memory)."""

    owner: str
    key_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class WrappedKey:
    """A data key as stored: encrypted under a master key, bound to its owner and key id."""

    owner: str
    key_id: str
    master_key_id: str
    nonce: bytes
    wrapped: bytes


def _wrap_aad(owner: str, key_id: str) -> bytes:
    return f"mmgen-data-key|{owner}|{key_id}".encode()


def wrap(master: MasterKey, key: DataKey) -> WrappedKey:
    nonce = os.urandom(NONCE_BYTES)
    blob = AESGCM(master.key).encrypt(nonce, key.key, _wrap_aad(key.owner, key.key_id))
    return WrappedKey(key.owner, key.key_id, master.key_id, nonce, blob)


def unwrap(keyring: MasterKeyring, stored: WrappedKey) -> DataKey:
    master = keyring.get(stored.master_key_id)
    try:
        raw = AESGCM(master.key).decrypt(
            stored.nonce, stored.wrapped, _wrap_aad(stored.owner, stored.key_id)
        )
    except InvalidTag as exc:
        raise PersonalDataCorruptError(
            f"data key of {stored.owner!r} does not unwrap under master key "
            f"{stored.master_key_id!r} (tampered or wrong master key)"
        ) from exc
    return DataKey(stored.owner, stored.key_id, raw)


def new_data_key(owner: str) -> DataKey:
    return DataKey(owner, f"dk-{uuid.uuid4().hex}", os.urandom(KEY_BYTES))


def bucket_of(owner: str, buckets: int) -> int:
    """A stable small number per owner, so rotation can walk the keystore in bounded slices."""
    return zlib.crc32(owner.encode()) % buckets


def check_owner(owner: str) -> str:
    if not _OWNER.match(owner):
        raise KeystoreError(f"owner {owner!r} is not of the form <kind>:<id>")
    return owner


@runtime_checkable
class Keystore(Protocol):
    """Port: per-owner data keys with crypto-shredding."""

    async def key_for_write(self, owner: str) -> DataKey:
        """The owner's data key, minted on first use; `OwnerErasedError` if the owner was erased."""
        ...

    async def key_for_read(self, owner: str, key_id: str) -> DataKey | None:
        """The key `key_id` of `owner`; `None` if shredded; `DataKeyMissingError` otherwise."""
        ...

    async def shred(self, owner: str, by: str | None = None) -> bool:
        """Delete the owner's key, mark it erased, purge caches. True if a live key was
        destroyed by this call or, when `by` names an order, by an earlier call for it."""
        ...

    async def is_erased(self, owner: str) -> bool: ...

    async def rotate_master_key(self) -> int:
        """Re-wrap every data key not under the current master key; returns how many."""
        ...

    def add_shred_listener(self, listener: ShredListener) -> None:
        """Call `listener(owner)` after every shred (snapshot stores, read-model caches)."""
        ...

    def invalidate(self, owner: str) -> None:
        """Forget the cached key (another process shredded it; seen from `SubjectErased`)."""
        ...


class KeyCache:
    """A short-lived in-process cache of unwrapped data keys; shred and invalidate evict.

    Each owner has a generation that every eviction bumps. A reader notes the generation
    before it fetches a key from storage and caches the key only if the generation has not
    moved meanwhile, so a fetch that straddles a shred cannot bring the shredded key back.
    """

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._keys: dict[str, tuple[float, DataKey]] = {}
        self._generations: dict[str, int] = {}

    def get(self, owner: str) -> DataKey | None:
        hit = self._keys.get(owner)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._keys[owner]
            return None
        return hit[1]

    def generation(self, owner: str) -> int:
        return self._generations.get(owner, 0)

    def put(self, key: DataKey, *, generation: int | None = None) -> None:
        """Cache `key`, unless its owner was evicted since `generation` was read."""
        if generation is not None and generation != self.generation(key.owner):
            return
        if self._ttl > 0:
            self._keys[key.owner] = (time.monotonic() + self._ttl, key)

    def evict(self, owner: str) -> None:
        self._keys.pop(owner, None)
        self._generations[owner] = self.generation(owner) + 1
        if len(self._generations) > 65_536:  # bounded: forget generations of uncached owners
            for stale in [o for o in self._generations if o not in self._keys][:32_768]:
                del self._generations[stale]

    def clear(self) -> None:
        for owner in list(self._keys):
            self.evict(owner)

    def __contains__(self, owner: str) -> bool:
        return self.get(owner) is not None


class KeystoreBase:
    """Cache, listeners and the read/write rules shared by every keystore backend."""

    def __init__(self, keyring: MasterKeyring, cache_ttl_seconds: float) -> None:
        self.keyring = keyring
        self.cache = KeyCache(cache_ttl_seconds)
        self._listeners: list[ShredListener] = []

    def add_shred_listener(self, listener: ShredListener) -> None:
        self._listeners.append(listener)

    def invalidate(self, owner: str) -> None:
        self.cache.evict(owner)

    async def _after_shred(self, owner: str) -> None:
        self.cache.evict(owner)
        for listener in self._listeners:
            await listener(owner)

    def _checked(self, owner: str, key_id: str, key: DataKey) -> DataKey:
        if key.key_id != key_id:
            log.error("data key %s of %s requested, %s stored", key_id, owner, key.key_id)
            raise DataKeyMissingError(owner, key_id)
        return key


@dataclass
class _Record:
    wrapped: WrappedKey | None
    erased_at: datetime | None = None
    erased_by: str | None = None


class InMemoryKeystore(KeystoreBase):
    """The `Keystore` contract in memory (wrapping included), for unit tests.

    Pass the `storage` of another instance to model two processes sharing one database.
    """

    def __init__(
        self,
        keyring: MasterKeyring,
        cache_ttl_seconds: float = 30.0,
        storage: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(keyring, cache_ttl_seconds)
        self.storage: dict[str, Any] = {} if storage is None else storage
        self._records: dict[str, _Record] = self.storage

    async def key_for_write(self, owner: str) -> DataKey:
        check_owner(owner)
        record = self._records.get(owner)
        if record is not None and record.wrapped is None:
            raise OwnerErasedError(owner)  # checked even on a cache hit: never seal for erased
        cached = self.cache.get(owner)
        if cached is not None:
            return cached
        if record is None:
            key = new_data_key(owner)
            self._records[owner] = _Record(wrap(self.keyring.current, key))
        elif record.wrapped is None:
            raise OwnerErasedError(owner)
        else:
            key = unwrap(self.keyring, record.wrapped)
        self.cache.put(key)
        return key

    async def key_for_read(self, owner: str, key_id: str) -> DataKey | None:
        cached = self.cache.get(owner)
        if cached is not None:
            return self._checked(owner, key_id, cached)
        record = self._records.get(owner)
        if record is None:
            log.error("no data key and no erasure marker for %s (key %s)", owner, key_id)
            raise DataKeyMissingError(owner, key_id)
        if record.wrapped is None:
            return None
        key = unwrap(self.keyring, record.wrapped)
        self.cache.put(key)
        return self._checked(owner, key_id, key)

    async def shred(self, owner: str, by: str | None = None) -> bool:
        check_owner(owner)
        record = self._records.get(owner)
        if record is None:  # never keyed: a marker, so no key is ever minted for it
            self._records[owner] = _Record(None, utc_now())
            shredded = False
        elif record.wrapped is not None:  # a live key: destroyed under this order
            self._records[owner] = _Record(None, utc_now(), by)
            shredded = True
        else:  # erased before: by this order when it says so
            shredded = by is not None and record.erased_by == by
        await self._after_shred(owner)
        return shredded

    async def is_erased(self, owner: str) -> bool:
        record = self._records.get(owner)
        return record is not None and record.wrapped is None

    async def rotate_master_key(self) -> int:
        count = 0
        for owner, record in self._records.items():
            wrapped = record.wrapped
            if wrapped is None or wrapped.master_key_id == self.keyring.current.key_id:
                continue
            record.wrapped = wrap(self.keyring.current, unwrap(self.keyring, wrapped))
            self.cache.evict(owner)
            count += 1
        return count

    def wrapped_keys(self) -> list[WrappedKey]:
        """What a database would hold (tests check rotation re-wrapped them)."""
        return [r.wrapped for r in self._records.values() if r.wrapped is not None]

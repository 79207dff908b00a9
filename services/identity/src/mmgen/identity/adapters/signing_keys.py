"""identity's Ed25519 token-signing keys: the `SigningKeyRing` port, on MongoDB and in memory.

`MongoSigningKeyRing` keeps them at rest encrypted and rotatable.

Collection `signing_keys`, one document per key: `{_id: kid, state: active|next|retired, nonce,
wrapped, created_at, signs_from, retired_at, verify_until, previous_verify_until}`. The private
key is AES-256-GCM-encrypted under a sub-key of the master key (the `kid` as associated data).

Rotation publishes before it signs: `rotate` adds a `next` key (at most one, a partial unique
index) that is in the JWKS at once but signs only from `signs_from` = now + the publish delay,
so every verifier that refreshes its JWKS meanwhile knows the key before the first token it
signs arrives (no 401s while caches catch up). From `signs_from` on, every instance signs with
it — which key signs is a function of time, not of a write, so instances agree without
coordination — and the next reload records the switch (`next` → `active`, the previous →
`retired`). The previous key keeps verifying, and stays in the JWKS, until `verify_until`:
`signs_from` plus the longest token lifetime and leeway. Exactly one key is `active` (a partial
unique index).

Reloads are bounded: every instance re-reads the ring every `reload_interval` in the background
(token issuance never waits for the database), a `kid` not of the form keys are given is refused
without a lookup, and an unknown well-formed `kid` reloads at most once per
`unknown_kid_reload_interval`, concurrent callers sharing one reload. After a master-key
rotation (the old key among the retired ones in the settings), a reload re-wraps each signing key
under the current master key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import normalize_time
from mmgen.events.ids import uuid7
from mmgen.platform.auth import SigningKey, jwks_document, well_formed_kid

log = logging.getLogger(__name__)

ACTIVE = "active"
NEXT = "next"
RETIRED = "retired"


@dataclass(frozen=True)
class RingKey:
    key: SigningKey
    state: str
    created_at: datetime
    verify_until: datetime | None
    #: When it starts signing (None: since it was created, the first key).
    signs_from: datetime | None = None
    #: Carried by a `next` key: until when the key it replaces verifies.
    previous_verify_until: datetime | None = None

    @property
    def starts(self) -> datetime:
        return self.signs_from or self.created_at

    def verifies_at(self, now: datetime) -> bool:
        return self.verify_until is None or self.verify_until > now

    def signs_at(self, now: datetime) -> bool:
        return self.state in (ACTIVE, NEXT) and self.starts <= now and self.verifies_at(now)


@dataclass(frozen=True)
class Rotation:
    kid: str
    previous_kid: str | None
    previous_verifies_until: datetime | None
    #: When the new key starts signing (it is in the JWKS from the rotation on).
    signs_from: datetime | None = None


class SigningKeyRing(Protocol):
    """The keys identity signs with, and the `KeySet` its own token verifier reads."""

    async def start(self) -> None:
        """Load the ring; mint the first key if there is none."""
        ...

    async def signing_key(self) -> SigningKey: ...

    async def get(self, kid: str) -> Ed25519PublicKey | None: ...

    def jwks(self) -> dict[str, list[dict[str, str]]]: ...

    async def rotate(
        self, verify_previous_for: timedelta, publish_for: timedelta = timedelta(0)
    ) -> Rotation:
        """Publish a new key now; it signs after `publish_for`; the current one verifies for
        `verify_previous_for` after that. A rotation already scheduled is returned as it is."""
        ...


def signer_at(keys: Iterable[RingKey], now: datetime) -> RingKey | None:
    """The key that signs at `now`: the latest-starting key that has started."""
    started = [k for k in keys if k.signs_at(now)]
    return max(started, key=lambda k: k.starts) if started else None


def pending_at(keys: Iterable[RingKey], now: datetime) -> RingKey | None:
    """A `next` key published but not signing yet."""
    return next((k for k in keys if k.state == NEXT and k.starts > now), None)


def _jwks(keys: list[RingKey], now: datetime) -> dict[str, list[dict[str, str]]]:
    """The public keys that verify at `now`: the signer first, then newest first (so a
    published next key comes before the keys it succeeds)."""
    signer = signer_at(keys, now)
    ordered = sorted(
        (k for k in keys if k.verifies_at(now)),
        key=lambda k: (k is not signer, -k.starts.timestamp()),
    )
    return jwks_document({k.key.kid: k.key.public_key for k in ordered})


def _rotation(keys: Iterable[RingKey], new: RingKey) -> Rotation:
    """What a rotation to `new` looks like: the key it succeeds and until when that verifies."""
    previous = max(
        (k for k in keys if k.key.kid != new.key.kid and k.starts < new.starts),
        key=lambda k: k.starts,
        default=None,
    )
    return Rotation(
        kid=new.key.kid,
        previous_kid=previous.key.kid if previous else None,
        previous_verifies_until=(previous.verify_until or new.previous_verify_until)
        if previous
        else None,
        signs_from=new.starts,
    )


class MongoSigningKeyRing:
    """Signing keys for identity and the `KeySet` its own token verifier reads."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        wrapping_key: bytes,
        *,
        retired_wrapping_keys: Sequence[bytes] = (),
        reload_interval: float = 30.0,
        unknown_kid_reload_interval: float = 5.0,
        collection: str = "signing_keys",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collection = db[collection]
        self._aead = AESGCM(wrapping_key)
        self._retired = [AESGCM(key) for key in retired_wrapping_keys]
        self._reload_interval = reload_interval
        self._unknown_kid_interval = unknown_kid_reload_interval
        self._clock = clock
        self._keys: dict[str, RingKey] = {}
        self._loaded_at = float("-inf")
        self._unknown_kid_reload_at = float("-inf")
        self._inflight: asyncio.Task[None] | None = None
        self._rotation_lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("state", ASCENDING)],
            unique=True,
            partialFilterExpression={"state": ACTIVE},
            name="one_active_key",
        )
        await self.collection.create_index(
            [("state", ASCENDING)],
            unique=True,
            partialFilterExpression={"state": NEXT},
            name="one_next_key",
        )

    async def start(self) -> None:
        """Load the ring; mint the first key if there is none (racing instances agree on one)."""
        await self.reload()
        if not any(k.state in (ACTIVE, NEXT) for k in self._keys.values()):
            with contextlib.suppress(DuplicateKeyError):  # another instance minted it first
                await self._insert(SigningKey.generate(kid=_new_kid()), ACTIVE)
            await self.reload()
        if signer_at(self._keys.values(), datetime.now(UTC)) is None:
            raise RuntimeError("no signing key after start-up")

    async def reload(self) -> None:
        """Read the ring (and record a switch to a `next` key that is due)."""
        now = datetime.now(UTC)
        keys: dict[str, RingKey] = {}
        cursor = self.collection.find(
            {
                "$or": [
                    {"state": {"$in": [ACTIVE, NEXT]}},
                    {"state": RETIRED, "verify_until": {"$gt": now}},
                ]
            }
        )
        async for doc in cursor:
            kid = str(doc["_id"])
            raw = await self._unwrap(doc)
            keys[kid] = RingKey(
                key=SigningKey.from_private_bytes(kid, raw),
                state=str(doc["state"]),
                created_at=normalize_time(doc["created_at"]),
                verify_until=normalize_time(doc["verify_until"])
                if doc.get("verify_until")
                else None,
                signs_from=normalize_time(doc["signs_from"]) if doc.get("signs_from") else None,
                previous_verify_until=normalize_time(doc["previous_verify_until"])
                if doc.get("previous_verify_until")
                else None,
            )
        self._keys = await self._record_switch(keys, now)
        self._loaded_at = self._clock()

    async def _record_switch(self, keys: dict[str, RingKey], now: datetime) -> dict[str, RingKey]:
        """A `next` key that signs by now becomes `active`, the one it succeeds `retired`.

        Which key signs does not depend on these writes (see `signer_at`), so an instance that
        reads between the two sees the same signer; racing instances make the same changes.
        """
        due = next((k for k in keys.values() if k.state == NEXT and k.starts <= now), None)
        if due is None:
            return keys
        for old in [k for k in keys.values() if k.state == ACTIVE]:
            until = old.verify_until or due.previous_verify_until or now
            await self.collection.update_one(
                {"_id": old.key.kid, "state": ACTIVE},
                {"$set": {"state": RETIRED, "retired_at": now, "verify_until": until}},
            )
            keys[old.key.kid] = replace(old, state=RETIRED, verify_until=until)
        with contextlib.suppress(DuplicateKeyError):  # another instance recorded it first
            await self.collection.update_one(
                {"_id": due.key.kid, "state": NEXT}, {"$set": {"state": ACTIVE}}
            )
        keys[due.key.kid] = replace(due, state=ACTIVE)
        return {kid: k for kid, k in keys.items() if k.verifies_at(now)}

    async def _unwrap(self, doc: dict[str, Any]) -> bytes:
        """The private key of `doc`; one still under a retired master key is re-wrapped under
        the current one, so signing keys follow a master-key rotation at the next reload."""
        kid, nonce, wrapped = str(doc["_id"]), bytes(doc["nonce"]), bytes(doc["wrapped"])
        try:
            return self._aead.decrypt(nonce, wrapped, _aad(kid))
        except InvalidTag:
            if not self._retired:
                raise
        for retired in self._retired:
            with contextlib.suppress(InvalidTag):
                raw = retired.decrypt(nonce, wrapped, _aad(kid))
                fresh = os.urandom(12)
                await self.collection.update_one(
                    {"_id": kid, "nonce": nonce},
                    {
                        "$set": {
                            "nonce": fresh,
                            "wrapped": self._aead.encrypt(fresh, raw, _aad(kid)),
                        }
                    },
                )
                return raw
        raise InvalidTag(f"signing key {kid} is wrapped under no master key in the settings")

    async def _insert(
        self,
        key: SigningKey,
        state: str,
        *,
        signs_from: datetime | None = None,
        previous_verify_until: datetime | None = None,
    ) -> None:
        nonce = os.urandom(12)
        now = datetime.now(UTC)
        await self.collection.insert_one(
            {
                "_id": key.kid,
                "state": state,
                "nonce": nonce,
                "wrapped": self._aead.encrypt(nonce, key.private_bytes(), _aad(key.kid)),
                "created_at": now,
                "signs_from": signs_from or now,
                "verify_until": None,
                "previous_verify_until": previous_verify_until,
            }
        )

    # --- bounded reloads ---------------------------------------------------------------------

    def _reload_in_background(self) -> asyncio.Task[None]:
        """The reload in flight, or a new one: concurrent callers share it."""
        if self._inflight is None:
            task = asyncio.get_running_loop().create_task(self.reload())
            task.add_done_callback(self._reload_done)
            self._inflight = task
        return self._inflight

    def _reload_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not reload the signing keys", exc_info=task.exception())

    async def signing_key(self) -> SigningKey:
        """The key to sign with now. The ring is re-read every `reload_interval` in the
        background, so issuing a token never waits for the database (nor for a reload that
        a flood of unknown `kid`s asked for)."""
        if self._clock() - self._loaded_at > self._reload_interval:
            self._reload_in_background()
        signer = signer_at(self._keys.values(), datetime.now(UTC))
        if signer is None:
            await self.start()
            signer = signer_at(self._keys.values(), datetime.now(UTC))
            assert signer is not None
        elif signer.state == NEXT:
            self._reload_in_background()  # it signs now: record the switch
        return signer.key

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        """`KeySet` port: the public key of `kid` while it verifies, else None."""
        if not well_formed_kid(kid):
            return None
        found = self._keys.get(kid)
        if found is None:
            if self._inflight is not None:
                await asyncio.shield(self._inflight)
            elif self._clock() - self._unknown_kid_reload_at >= self._unknown_kid_interval:
                self._unknown_kid_reload_at = self._clock()
                await asyncio.shield(self._reload_in_background())
            found = self._keys.get(kid)
        if found is None or not found.verifies_at(datetime.now(UTC)):
            return None
        return found.key.public_key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys that verify now (the signer first): `GET /.well-known/jwks.json`."""
        return _jwks(list(self._keys.values()), datetime.now(UTC))

    async def rotate(
        self, verify_previous_for: timedelta, publish_for: timedelta = timedelta(0)
    ) -> Rotation:
        """Publish a new key now; it signs from now + `publish_for`; the current key verifies
        until `verify_previous_for` after that. A rotation already scheduled is returned."""
        async with self._rotation_lock:
            await self.reload()
            now = datetime.now(UTC)
            scheduled = pending_at(self._keys.values(), now)
            if scheduled is not None:
                return _rotation(self._keys.values(), scheduled)
            current = signer_at(self._keys.values(), now)
            signs_from = now + publish_for
            until = signs_from + verify_previous_for
            new = SigningKey.generate(kid=_new_kid())
            try:
                await self._insert(new, NEXT, signs_from=signs_from, previous_verify_until=until)
            except DuplicateKeyError:  # a concurrent rotation scheduled one: report that one
                await self.reload()
                keys = list(self._keys.values())
                theirs = pending_at(keys, now) or max(keys, key=lambda k: k.starts)
                return _rotation(keys, theirs)
            if current is not None:
                await self.collection.update_one(
                    {"_id": current.key.kid, "state": ACTIVE}, {"$set": {"verify_until": until}}
                )
            await self.reload()
            return Rotation(
                kid=new.kid,
                previous_kid=current.key.kid if current else None,
                previous_verifies_until=until if current else None,
                signs_from=signs_from,
            )


class InMemorySigningKeyRing:
    """The same ring in memory, for unit tests (keys are not wrapped: nothing is stored)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.keys: dict[str, RingKey] = {}
        self.clock = clock

    async def start(self) -> None:
        if not any(k.state in (ACTIVE, NEXT) for k in self.keys.values()):
            key = RingKey(SigningKey.generate(kid=_new_kid()), ACTIVE, self.clock(), None)
            self.keys[key.key.kid] = key

    async def signing_key(self) -> SigningKey:
        await self.start()
        signer = signer_at(self.keys.values(), self.clock())
        assert signer is not None
        return signer.key

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        found = self.keys.get(kid) if well_formed_kid(kid) else None
        if found is None or not found.verifies_at(self.clock()):
            return None
        return found.key.public_key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return _jwks(list(self.keys.values()), self.clock())

    async def rotate(
        self, verify_previous_for: timedelta, publish_for: timedelta = timedelta(0)
    ) -> Rotation:
        now = self.clock()
        scheduled = pending_at(self.keys.values(), now)
        if scheduled is not None:
            return _rotation(self.keys.values(), scheduled)
        current = signer_at(self.keys.values(), now)
        signs_from = now + publish_for
        until = signs_from + verify_previous_for
        if current is not None:
            self.keys[current.key.kid] = replace(current, verify_until=until)
        new = RingKey(
            SigningKey.generate(kid=_new_kid()),
            NEXT,
            now,
            None,
            signs_from=signs_from,
            previous_verify_until=until,
        )
        self.keys[new.key.kid] = new
        return Rotation(
            kid=new.key.kid,
            previous_kid=current.key.kid if current else None,
            previous_verifies_until=until if current else None,
            signs_from=signs_from,
        )


def _aad(kid: str) -> bytes:
    return f"mmgen-signing-key|{kid}".encode()


def _new_kid() -> str:
    # Time-ordered, so the JWKS and logs show which key is newer at a glance.
    return f"k-{uuid7().hex}"

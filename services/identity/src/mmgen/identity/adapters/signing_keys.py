"""identity's Ed25519 token-signing keys: the `SigningKeyRing` port, on MongoDB and in memory.

`MongoSigningKeyRing` keeps them at rest encrypted and rotatable.

Collection `signing_keys`, one document per key: `{_id: kid, state: active|retired, nonce,
wrapped, created_at, retired_at, verify_until}`. The private key is AES-256-GCM-encrypted under
a sub-key of the master key (the `kid` as associated data). Exactly one key is `active` (a
partial unique index), it signs; a retired key keeps verifying — and stays in the JWKS — until
`verify_until`, the moment the last token it signed expires. Every instance re-reads the ring
every `reload_interval` and on an unknown `kid`, so a rotation made by one instance reaches the
others without a restart. After a master-key rotation (the old key among the retired ones in
the settings), a reload re-wraps each signing key under the current master key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.ids import uuid7
from mmgen.platform.auth import SigningKey, jwks_document

ACTIVE = "active"
RETIRED = "retired"


@dataclass(frozen=True)
class RingKey:
    key: SigningKey
    state: str
    created_at: datetime
    verify_until: datetime | None

    def verifies_at(self, now: datetime) -> bool:
        return self.state == ACTIVE or (self.verify_until is not None and self.verify_until > now)


@dataclass(frozen=True)
class Rotation:
    kid: str
    previous_kid: str | None
    previous_verifies_until: datetime | None


class SigningKeyRing(Protocol):
    """The keys identity signs with, and the `KeySet` its own token verifier reads."""

    async def start(self) -> None:
        """Load the ring; mint the first key if there is none."""
        ...

    async def signing_key(self) -> SigningKey: ...

    async def get(self, kid: str) -> Ed25519PublicKey | None: ...

    def jwks(self) -> dict[str, list[dict[str, str]]]: ...

    async def rotate(self, verify_previous_for: timedelta) -> Rotation: ...


def _jwks(keys: list[RingKey], now: datetime) -> dict[str, list[dict[str, str]]]:
    """The public keys that verify at `now`, active first, then newest first."""
    ordered = sorted(
        (k for k in keys if k.verifies_at(now)),
        key=lambda k: (k.state != ACTIVE, -k.created_at.timestamp()),
    )
    return jwks_document({k.key.kid: k.key.public_key for k in ordered})


class MongoSigningKeyRing:
    """Signing keys for identity and the `KeySet` its own token verifier reads."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        wrapping_key: bytes,
        *,
        retired_wrapping_keys: Sequence[bytes] = (),
        reload_interval: float = 30.0,
        unknown_kid_reload_interval: float = 1.0,
        collection: str = "signing_keys",
    ) -> None:
        self.collection = db[collection]
        self._aead = AESGCM(wrapping_key)
        self._retired = [AESGCM(key) for key in retired_wrapping_keys]
        self._reload_interval = reload_interval
        self._unknown_kid_interval = unknown_kid_reload_interval
        self._keys: dict[str, RingKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("state", ASCENDING)],
            unique=True,
            partialFilterExpression={"state": ACTIVE},
            name="one_active_key",
        )

    async def start(self) -> None:
        """Load the ring; mint the first key if there is none (racing instances agree on one)."""
        await self.reload()
        if self._active() is None:
            with contextlib.suppress(DuplicateKeyError):  # another instance minted it first
                await self._insert(SigningKey.generate(kid=_new_kid()))
            await self.reload()
        if self._active() is None:
            raise RuntimeError("no active signing key after start-up")

    async def reload(self) -> None:
        now = datetime.now(UTC)
        keys: dict[str, RingKey] = {}
        cursor = self.collection.find(
            {"$or": [{"state": ACTIVE}, {"state": RETIRED, "verify_until": {"$gt": now}}]}
        )
        async for doc in cursor:
            kid = str(doc["_id"])
            raw = await self._unwrap(doc)
            keys[kid] = RingKey(
                key=SigningKey.from_private_bytes(kid, raw),
                state=str(doc["state"]),
                created_at=_utc(doc["created_at"]),
                verify_until=_utc(doc["verify_until"]) if doc.get("verify_until") else None,
            )
        self._keys = keys
        self._loaded_at = time.monotonic()

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

    async def _insert(self, key: SigningKey) -> None:
        nonce = os.urandom(12)
        await self.collection.insert_one(
            {
                "_id": key.kid,
                "state": ACTIVE,
                "nonce": nonce,
                "wrapped": self._aead.encrypt(nonce, key.private_bytes(), _aad(key.kid)),
                "created_at": datetime.now(UTC),
                "verify_until": None,
            }
        )

    def _active(self) -> RingKey | None:
        return next((k for k in self._keys.values() if k.state == ACTIVE), None)

    async def signing_key(self) -> SigningKey:
        """The key to sign with now (re-read from the database every `reload_interval`)."""
        if time.monotonic() - self._loaded_at > self._reload_interval:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self._reload_interval:
                    await self.reload()
        active = self._active()
        if active is None:
            await self.start()
            active = self._active()
            assert active is not None
        return active.key

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        """`KeySet` port: the public key of `kid` while it verifies, else None."""
        found = self._keys.get(kid)
        if found is None and time.monotonic() - self._loaded_at > self._unknown_kid_interval:
            async with self._lock:
                if kid not in self._keys:
                    await self.reload()
            found = self._keys.get(kid)
        if found is None or not found.verifies_at(datetime.now(UTC)):
            return None
        return found.key.public_key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys that verify now (active first): `GET /.well-known/jwks.json`."""
        return _jwks(list(self._keys.values()), datetime.now(UTC))

    async def rotate(self, verify_previous_for: timedelta) -> Rotation:
        """Retire the active key (it verifies for `verify_previous_for` more) and mint a new one."""
        async with self._lock:
            await self.reload()
            previous = self._active()
            until = datetime.now(UTC) + verify_previous_for
            if previous is not None:
                await self.collection.update_one(
                    {"_id": previous.key.kid, "state": ACTIVE},
                    {
                        "$set": {
                            "state": RETIRED,
                            "retired_at": datetime.now(UTC),
                            "verify_until": until,
                        }
                    },
                )
            new = SigningKey.generate(kid=_new_kid())
            with contextlib.suppress(DuplicateKeyError):  # a concurrent rotation won: use its key
                await self._insert(new)
            await self.reload()
            active = self._active()
            assert active is not None
            return Rotation(
                kid=active.key.kid,
                previous_kid=previous.key.kid if previous else None,
                previous_verifies_until=until if previous else None,
            )


class InMemorySigningKeyRing:
    """The same ring in memory, for unit tests (keys are not wrapped: nothing is stored)."""

    def __init__(self) -> None:
        self.keys: dict[str, RingKey] = {}

    async def start(self) -> None:
        if not any(k.state == ACTIVE for k in self.keys.values()):
            self._mint()

    def _mint(self) -> RingKey:
        key = RingKey(SigningKey.generate(kid=_new_kid()), ACTIVE, datetime.now(UTC), None)
        self.keys[key.key.kid] = key
        return key

    async def signing_key(self) -> SigningKey:
        await self.start()
        return next(k.key for k in self.keys.values() if k.state == ACTIVE)

    async def get(self, kid: str) -> Ed25519PublicKey | None:
        found = self.keys.get(kid)
        if found is None or not found.verifies_at(datetime.now(UTC)):
            return None
        return found.key.public_key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return _jwks(list(self.keys.values()), datetime.now(UTC))

    async def rotate(self, verify_previous_for: timedelta) -> Rotation:
        previous = next((k for k in self.keys.values() if k.state == ACTIVE), None)
        until = datetime.now(UTC) + verify_previous_for
        if previous is not None:
            self.keys[previous.key.kid] = RingKey(previous.key, RETIRED, previous.created_at, until)
        new = self._mint()
        return Rotation(
            kid=new.key.kid,
            previous_kid=previous.key.kid if previous else None,
            previous_verifies_until=until if previous else None,
        )


def _aad(kid: str) -> bytes:
    return f"mmgen-signing-key|{kid}".encode()


def _new_kid() -> str:
    # Time-ordered, so the JWKS and logs show which key is newer at a glance.
    return f"k-{uuid7().hex}"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

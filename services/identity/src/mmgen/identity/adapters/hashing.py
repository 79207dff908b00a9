"""Keyed hashes and password hashing: the blind index, service secrets, argon2id.

- The **blind index** of an email is HMAC-SHA256 under `blind_index_key`: equal emails give
  equal indexes (uniqueness, lookup at login) while the database never holds the address.
- A **service secret** is HMAC-SHA256(service_credentials_key, "mmgen-service:<name>"), so
  identity stores no per-service secret and each service is given only its own.
- **Passwords** are hashed with argon2id at or above OWASP's minimum (19 MiB, t=2, p=1); the
  hashing runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SERVICE_SECRET_LABEL = b"mmgen-service:"


def derive_key(master: bytes, label: str) -> bytes:
    """A 32-byte sub-key of `master` for one purpose (HMAC-SHA256 as a KDF)."""
    return hmac.new(master, b"mmgen-identity-subkey:" + label.encode(), hashlib.sha256).digest()


class BlindIndex:
    """HMAC-SHA256 under a secret key, hex: for normalised emails and client addresses."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, value: str, *, kind: str = "email") -> str:
        message = f"{kind}:{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def service_secret(key: bytes, service: str) -> str:
    """The client secret of `service` (what that service's settings hold), base64url."""
    digest = hmac.new(key, SERVICE_SECRET_LABEL + service.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def service_secret_matches(key: bytes, service: str, presented: str) -> bool:
    return hmac.compare_digest(service_secret(key, service).encode(), presented.encode())


class PasswordHashing:
    """argon2id hashing and verification, off the event loop."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # Verified against when the email is unknown, so both failures take the same time.
        self._dummy = self._hasher.hash("mmgen-identity-timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        target = password_hash or self._dummy
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(ok) and password_hash is not None

    @property
    def parameters(self) -> dict[str, int]:
        return {
            "memory_kib": self._hasher.memory_cost,
            "time_cost": self._hasher.time_cost,
            "parallelism": self._hasher.parallelism,
        }

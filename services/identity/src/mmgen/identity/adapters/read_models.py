"""Identity's read models on MongoDB: accounts, the email blind index, refresh tokens, throttles.

None of them holds personal data in clear: an account is `{role, status, email_index}`, the
email appears only as its keyed hash, client addresses only as keyed hashes, refresh tokens only
as SHA-256 digests. Everything personal lives in the (encrypted) events.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.identity.domain.errors import (
    EmailTakenError,
    LoginThrottledError,
    RefreshTokenInvalidError,
)

PENDING = "pending"
ACTIVE = "active"


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class AccountsReadModel:
    """`users` (id → role, status, email index) and `email_index` (blind index → id, unique)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.users = db["users"]
        self.emails = db["email_index"]

    async def ensure_indexes(self) -> None:
        await self.emails.create_index([("user_id", ASCENDING)], name="user_id")
        await self.users.create_index([("role", ASCENDING)], name="role")

    # --- email reservations -----------------------------------------------------------------

    async def reserve_email(self, email_index: str, user_id: str) -> None:
        """Claim an email for `user_id` before its event is written; `EmailTakenError` if held."""
        try:
            await self.emails.insert_one(
                {"_id": email_index, "user_id": user_id, "state": PENDING, "reserved_at": _now()}
            )
        except DuplicateKeyError as exc:
            raise EmailTakenError("an account with this email exists already") from exc

    async def reservation(self, email_index: str) -> dict[str, Any] | None:
        return await self.emails.find_one({"_id": email_index})

    async def activate_email(self, email_index: str, user_id: str) -> None:
        await self.emails.update_one(
            {"_id": email_index, "user_id": user_id}, {"$set": {"state": ACTIVE}}
        )

    async def release_email(self, email_index: str, user_id: str) -> None:
        await self.emails.delete_one({"_id": email_index, "user_id": user_id})

    async def user_id_for_email(self, email_index: str) -> str | None:
        doc = await self.emails.find_one({"_id": email_index, "state": ACTIVE})
        return str(doc["user_id"]) if doc else None

    # --- accounts ------------------------------------------------------------------------------

    async def put(self, user_id: str, *, role: str, status: str, email_index: str) -> None:
        await self.users.update_one(
            {"_id": user_id},
            {
                "$set": {"role": role, "status": status, "email_index": email_index},
                "$setOnInsert": {"created_at": _now()},
            },
            upsert=True,
        )

    async def get(self, user_id: str) -> dict[str, Any] | None:
        return await self.users.find_one({"_id": user_id})

    async def set_status(self, user_id: str, status: str) -> None:
        await self.users.update_one({"_id": user_id}, {"$set": {"status": status}})

    async def set_email_index(self, user_id: str, email_index: str) -> None:
        await self.users.update_one({"_id": user_id}, {"$set": {"email_index": email_index}})

    async def any_with_role(self, role: str) -> bool:
        return await self.users.find_one({"role": role, "status": ACTIVE}) is not None

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        """Remove the account and its email reservations (the email is free again)."""
        users = await self.users.delete_many({"_id": user_id}, session=session)
        emails = await self.emails.delete_many({"user_id": user_id}, session=session)
        return users.deleted_count + emails.deleted_count

    async def count_subject(self, user_id: str) -> int:
        return await self.users.count_documents(
            {"_id": user_id}
        ) + await self.emails.count_documents({"user_id": user_id})


@dataclass(frozen=True)
class RefreshOutcome:
    """A successful rotation: the new token, and whose it is."""

    token: str
    user_id: str
    role: str
    family_id: str


class RefreshTokenReusedError(RefreshTokenInvalidError):
    """An already-used refresh token was presented: its family is now revoked."""

    def __init__(self, user_id: str, family_id: str, revoked: int) -> None:
        self.user_id, self.family_id, self.revoked = user_id, family_id, revoked
        super().__init__("the refresh token was already used; the session is revoked")


class RefreshTokenStore:
    """Opaque refresh tokens, stored as SHA-256 digests, rotated on every use, in families.

    A family is every token descending from one login. Presenting a token that was already
    used (someone kept a copy) revokes the whole family, so both the thief and the owner must
    log in again — the owner's next refresh fails, which is how the theft is noticed.
    """

    def __init__(self, db: AsyncDatabase[Any], *, ttl: timedelta) -> None:
        self.tokens = db["refresh_tokens"]
        self.ttl = ttl

    async def ensure_indexes(self) -> None:
        await self.tokens.create_index([("family_id", ASCENDING)], name="family")
        await self.tokens.create_index([("user_id", ASCENDING)], name="user")
        # Used and expired tokens linger a day past expiry (reuse detection), then go.
        await self.tokens.create_index("purge_at", expireAfterSeconds=0, name="purge")

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    async def issue(self, user_id: str, role: str, family_id: str | None = None) -> str:
        token = "rt_" + secrets.token_urlsafe(32)
        now = _now()
        await self.tokens.insert_one(
            {
                "_id": self.digest(token),
                "family_id": family_id or secrets.token_hex(16),
                "user_id": user_id,
                "role": role,
                "status": ACTIVE,
                "created_at": now,
                "expires_at": now + self.ttl,
                "purge_at": now + self.ttl + timedelta(days=1),
            }
        )
        return token

    async def rotate(self, token: str) -> RefreshOutcome:
        """Spend `token` and issue its successor; reuse revokes the family."""
        if not token.startswith("rt_") or len(token) > 200:
            raise RefreshTokenInvalidError()
        digest = self.digest(token)
        now = _now()
        # Only an unexpired token is spent: an expired one stays as it was, so presenting it
        # again (a client retrying) is refused as expired, not mistaken for a stolen copy.
        spent = await self.tokens.find_one_and_update(
            {"_id": digest, "status": ACTIVE, "expires_at": {"$gt": now}},
            {"$set": {"status": "used", "used_at": now}},
            return_document=ReturnDocument.BEFORE,
        )
        if spent is None:
            known = await self.tokens.find_one({"_id": digest})
            if known is None:
                raise RefreshTokenInvalidError()
            if known["status"] == "used":
                revoked = await self.revoke_family(str(known["family_id"]))
                raise RefreshTokenReusedError(
                    str(known["user_id"]), str(known["family_id"]), revoked
                )
            if known["status"] == ACTIVE:
                raise RefreshTokenInvalidError("the refresh token has expired")
            raise RefreshTokenInvalidError("the refresh token was revoked")
        family = str(spent["family_id"])
        new = await self.issue(str(spent["user_id"]), str(spent["role"]), family)
        return RefreshOutcome(new, str(spent["user_id"]), str(spent["role"]), family)

    async def revoke_family(self, family_id: str) -> int:
        result = await self.tokens.update_many(
            {"family_id": family_id, "status": {"$ne": "revoked"}},
            {"$set": {"status": "revoked", "revoked_at": _now()}},
        )
        return result.modified_count

    async def revoke_user(self, user_id: str) -> int:
        result = await self.tokens.update_many(
            {"user_id": user_id, "status": {"$ne": "revoked"}},
            {"$set": {"status": "revoked", "revoked_at": _now()}},
        )
        return result.modified_count

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        result = await self.tokens.delete_many({"user_id": user_id}, session=session)
        return result.deleted_count

    async def count_subject(self, user_id: str) -> int:
        return await self.tokens.count_documents({"user_id": user_id})


class LoginThrottle:
    """Failed-login counters per account and per client address, in fixed windows.

    Keys are keyed hashes (`acct:<email index>`, `addr:<hmac of the address>`), so the
    collection holds neither emails nor addresses. Unknown emails count like known ones: the
    throttle must not reveal which accounts exist.
    """

    def __init__(
        self,
        db: AsyncDatabase[Any],
        *,
        window_seconds: int,
        max_per_account: int,
        max_per_address: int,
    ) -> None:
        self.failures = db["login_failures"]
        self.window = timedelta(seconds=window_seconds)
        self.limits = {"acct": max_per_account, "addr": max_per_address}

    async def ensure_indexes(self) -> None:
        await self.failures.create_index("expires_at", expireAfterSeconds=0, name="expiry")

    async def check(self, keys: list[str]) -> None:
        """`LoginThrottledError` (with the seconds to wait) if any key is over its limit."""
        now = _now()
        wait = 0.0
        async for doc in self.failures.find({"_id": {"$in": keys}}):
            limit = self.limits[str(doc["_id"]).split(":", 1)[0]]
            ends = _utc(doc["window_start"]) + self.window
            if doc["count"] >= limit and ends > now:
                wait = max(wait, (ends - now).total_seconds())
        if wait > 0:
            raise LoginThrottledError(math.ceil(wait))

    async def record_failure(self, keys: list[str]) -> None:
        now = _now()
        for key in keys:
            # Start a new window if the old one ended; otherwise count within it.
            await self.failures.delete_one(
                {"_id": key, "window_start": {"$lte": now - self.window}}
            )
            await self.failures.update_one(
                {"_id": key},
                {
                    "$inc": {"count": 1},
                    "$setOnInsert": {"window_start": now, "expires_at": now + self.window},
                },
                upsert=True,
            )

    async def clear(self, key: str) -> None:
        await self.failures.delete_one({"_id": key})

    async def delete_keys(self, keys: list[str], session: AsyncClientSession | None = None) -> int:
        result = await self.failures.delete_many({"_id": {"$in": keys}}, session=session)
        return result.deleted_count


class AccountDenylist:
    """`SubjectDenylist` for identity's own verifier: a user token works only while the account
    is active (closed or erased → refused at once). Service tokens (`sub` = a service name) are
    not accounts and pass."""

    def __init__(self, accounts: AccountsReadModel) -> None:
        self.accounts = accounts

    async def is_denied(self, subject_id: str) -> bool:
        try:
            uuid.UUID(subject_id)
        except ValueError:
            return False
        doc = await self.accounts.users.find_one({"_id": subject_id}, projection={"status": 1})
        return doc is None or doc.get("status") != ACTIVE

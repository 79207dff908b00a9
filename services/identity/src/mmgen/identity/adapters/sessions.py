"""Refresh tokens: opaque, stored as SHA-256 digests, rotated on every use, in families.

A family is every token descending from one login. Presenting a token that was already used
(someone kept a copy) revokes the whole family, so both the thief and the owner must log in
again — the owner's next refresh fails, which is how the theft is noticed. Refresh tokens are
the service's own state, not a projection of events: dropping them signs everyone out.

Every token of a family keeps when its login happened (`auth_time`): a refreshed access token
is new, but the sign-in behind it is not, and "signed in recently" (retention's erasure) must
not be satisfied by refreshing. A stored token from before this was kept reads as signed in
at the epoch: never recent, so the person gives their password again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.envelope import normalize_time
from mmgen.identity.domain.errors import RefreshTokenInvalidError, RefreshTokenReusedError

ACTIVE, USED, REVOKED = "active", "used", "revoked"
#: The sign-in time of a stored token that does not say (never recent).
UNKNOWN_SIGN_IN = datetime(1970, 1, 1, tzinfo=UTC)
PREFIX = "rt_"
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def well_formed(token: str) -> bool:
    return token.startswith(PREFIX) and len(token) <= 200


@dataclass(frozen=True)
class RefreshOutcome:
    """A successful rotation: the new token, and whose it is."""

    token: str
    user_id: str
    role: str
    family_id: str
    #: How the family's sign-in authenticated (RFC 8176): a refresh keeps the sign-in's factors.
    amr: tuple[str, ...] = ("pwd",)
    #: The audiences the sign-in asked for (a refresh keeps them); None: the role's default.
    audiences: tuple[str, ...] | None = None
    #: When the family's sign-in happened (a refresh keeps it).
    auth_time: datetime = UNKNOWN_SIGN_IN


class RefreshTokenStore(Protocol):
    """Port of the refresh-token store."""

    async def issue(
        self,
        user_id: str,
        role: str,
        family_id: str | None = None,
        amr: Sequence[str] = ("pwd",),
        audiences: Sequence[str] | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        """A new token (of a new family unless `family_id`); `auth_time`: the sign-in's time,
        now when not given (a new sign-in)."""
        ...

    async def rotate(self, token: str) -> RefreshOutcome:
        """Spend `token` and issue its successor; reuse revokes the family
        (`RefreshTokenReusedError`); unknown, expired or revoked: `RefreshTokenInvalidError`."""
        ...

    async def revoke_family(self, family_id: str) -> int: ...

    async def revoke_user(self, user_id: str) -> int: ...

    async def delete_subject(
        self, user_id: str, session: AsyncClientSession | None = None
    ) -> int: ...

    async def count_subject(self, user_id: str) -> int: ...


def refused(known: dict[str, Any] | None) -> RefreshTokenInvalidError:
    """Why a token that could not be spent is refused (reuse is handled by the caller)."""
    if known is None:
        return RefreshTokenInvalidError()
    if known["status"] == ACTIVE:  # an expired token: not a stolen copy, just refused
        return RefreshTokenInvalidError("the refresh token has expired")
    return RefreshTokenInvalidError("the refresh token was revoked")


class MongoRefreshTokenStore:
    """Collection `refresh_tokens`: `{_id: digest, family_id, user_id, role, status, ...}`."""

    def __init__(self, db: AsyncDatabase[Any], *, ttl: timedelta) -> None:
        self.tokens = db["refresh_tokens"]
        self.ttl = ttl

    async def ensure_indexes(self) -> None:
        await self.tokens.create_index([("family_id", ASCENDING)], name="family")
        await self.tokens.create_index([("user_id", ASCENDING)], name="user")
        # Used and expired tokens linger a day past expiry (reuse detection), then go.
        await self.tokens.create_index("purge_at", expireAfterSeconds=0, name="purge")

    async def issue(
        self,
        user_id: str,
        role: str,
        family_id: str | None = None,
        amr: Sequence[str] = ("pwd",),
        audiences: Sequence[str] | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        token = new_token()
        now = _now()
        await self.tokens.insert_one(
            {
                "_id": digest(token),
                "family_id": family_id or secrets.token_hex(16),
                "user_id": user_id,
                "role": role,
                "amr": list(amr),
                "audiences": None if audiences is None else list(audiences),
                "auth_time": auth_time or now,
                "status": ACTIVE,
                "created_at": now,
                "expires_at": now + self.ttl,
                "purge_at": now + self.ttl + timedelta(days=1),
            }
        )
        return token

    async def rotate(self, token: str) -> RefreshOutcome:
        if not well_formed(token):
            raise RefreshTokenInvalidError()
        key = digest(token)
        now = _now()
        # Only an unexpired token is spent: an expired one stays as it was, so presenting it
        # again (a client retrying) is refused as expired, not mistaken for a stolen copy.
        spent = await self.tokens.find_one_and_update(
            {"_id": key, "status": ACTIVE, "expires_at": {"$gt": now}},
            {"$set": {"status": USED, "used_at": now}},
            return_document=ReturnDocument.BEFORE,
        )
        if spent is None:
            known = await self.tokens.find_one({"_id": key})
            if known is not None and known["status"] == USED:
                revoked = await self.revoke_family(str(known["family_id"]))
                raise RefreshTokenReusedError(
                    str(known["user_id"]), str(known["family_id"]), revoked
                )
            raise refused(known)
        family = str(spent["family_id"])
        amr = tuple(spent.get("amr") or ("pwd",))
        kept = spent.get("audiences")
        audiences = None if kept is None else tuple(str(name) for name in kept)
        user_id, role = str(spent["user_id"]), str(spent["role"])
        auth_time = normalize_time(spent.get("auth_time") or UNKNOWN_SIGN_IN)
        new = await self.issue(user_id, role, family, amr, audiences, auth_time)
        return RefreshOutcome(new, user_id, role, family, amr, audiences, auth_time)

    async def revoke_family(self, family_id: str) -> int:
        return await self._revoke({"family_id": family_id})

    async def revoke_user(self, user_id: str) -> int:
        return await self._revoke({"user_id": user_id})

    async def _revoke(self, query: dict[str, Any]) -> int:
        result = await self.tokens.update_many(
            {**query, "status": {"$ne": REVOKED}},
            {"$set": {"status": REVOKED, "revoked_at": _now()}},
        )
        return result.modified_count

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        result = await self.tokens.delete_many({"user_id": user_id}, session=session)
        return result.deleted_count

    async def count_subject(self, user_id: str) -> int:
        return await self.tokens.count_documents({"user_id": user_id})


@dataclass(frozen=True)
class _Stored:
    family_id: str
    user_id: str
    role: str
    status: str
    expires_at: datetime
    amr: tuple[str, ...] = ("pwd",)
    audiences: tuple[str, ...] | None = None
    auth_time: datetime = UNKNOWN_SIGN_IN


class InMemoryRefreshTokenStore:
    """The same store in a dictionary, for unit tests; `clock` moves time for expiry."""

    def __init__(self, *, ttl: timedelta, clock: Clock = _now) -> None:
        self.ttl = ttl
        self.clock = clock
        self.tokens: dict[str, _Stored] = {}

    async def issue(
        self,
        user_id: str,
        role: str,
        family_id: str | None = None,
        amr: Sequence[str] = ("pwd",),
        audiences: Sequence[str] | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        token = new_token()
        family = family_id or secrets.token_hex(16)
        now = self.clock()
        kept = None if audiences is None else tuple(audiences)
        self.tokens[digest(token)] = _Stored(
            family, user_id, role, ACTIVE, now + self.ttl, tuple(amr), kept, auth_time or now
        )
        return token

    async def rotate(self, token: str) -> RefreshOutcome:
        if not well_formed(token):
            raise RefreshTokenInvalidError()
        key = digest(token)
        known = self.tokens.get(key)
        if known is None or known.status != ACTIVE or known.expires_at <= self.clock():
            if known is not None and known.status == USED:
                revoked = await self.revoke_family(known.family_id)
                raise RefreshTokenReusedError(known.user_id, known.family_id, revoked)
            raise refused(None if known is None else {"status": known.status})
        self.tokens[key] = replace(known, status=USED)
        new = await self.issue(
            known.user_id, known.role, known.family_id, known.amr, known.audiences, known.auth_time
        )
        return RefreshOutcome(
            new,
            known.user_id,
            known.role,
            known.family_id,
            known.amr,
            known.audiences,
            known.auth_time,
        )

    async def revoke_family(self, family_id: str) -> int:
        return self._revoke(lambda stored: stored.family_id == family_id)

    async def revoke_user(self, user_id: str) -> int:
        return self._revoke(lambda stored: stored.user_id == user_id)

    def _revoke(self, chosen: Callable[[_Stored], bool]) -> int:
        keys = [k for k, s in self.tokens.items() if chosen(s) and s.status != REVOKED]
        for key in keys:
            self.tokens[key] = replace(self.tokens[key], status=REVOKED)
        return len(keys)

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        keys = [k for k, s in self.tokens.items() if s.user_id == user_id]
        for key in keys:
            del self.tokens[key]
        return len(keys)

    async def count_subject(self, user_id: str) -> int:
        return sum(1 for s in self.tokens.values() if s.user_id == user_id)

    def active(self, user_id: str) -> int:
        return sum(1 for s in self.tokens.values() if s.user_id == user_id and s.status == ACTIVE)

"""Things that may be used once: a TOTP time step of an account, a mailed token.

`claim(key, expires_at)` is atomic (an insert on a unique `_id`): of two concurrent requests
presenting the same code or link, exactly one gets True. A claim is kept until it could no
longer be presented anyway (`expires_at`, a TTL index), so the collection stays small.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class OneTimeUses(Protocol):
    async def claim(self, key: str, expires_at: datetime) -> bool:
        """True the first time `key` is claimed (until it expires), False afterwards."""
        ...

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        """Forget a subject's claims (erasure)."""
        ...


class MongoOneTimeUses:
    """Collection `one_time_uses`: `{_id: key, user_id, expires_at}` (TTL index)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.uses = db["one_time_uses"]

    async def ensure_indexes(self) -> None:
        await self.uses.create_index("expires_at", expireAfterSeconds=0)
        await self.uses.create_index("user_id")

    async def claim(self, key: str, expires_at: datetime) -> bool:
        try:
            await self.uses.insert_one(
                {"_id": key, "user_id": _subject(key), "expires_at": expires_at}
            )
        except DuplicateKeyError:
            return False
        return True

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        result = await self.uses.delete_many({"user_id": user_id}, session=session)
        return result.deleted_count


class InMemoryOneTimeUses:
    def __init__(self) -> None:
        self.claims: dict[str, datetime] = {}

    async def claim(self, key: str, expires_at: datetime) -> bool:
        held = self.claims.get(key)
        if held is not None and held > datetime.now(UTC):
            return False
        self.claims[key] = expires_at
        return True

    async def delete_subject(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        mine = [key for key in self.claims if _subject(key) == user_id]
        for key in mine:
            del self.claims[key]
        return len(mine)


def _subject(key: str) -> str:
    """Keys are `<kind>:<user id>:<what>`."""
    parts = key.split(":")
    return parts[1] if len(parts) > 2 else ""

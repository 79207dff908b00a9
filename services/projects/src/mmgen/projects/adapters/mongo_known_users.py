"""`MongoKnownUsers`: accounts and their roles as identity's events describe them.

One document per user id: `{role, status}` (no personal value: identity's public data is
the role). Registration never revives a closed or erased account, and erasure leaves a
tombstone without the role, so a redelivered registration stays without effect.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.projects.adapters.ports import KnownUser

KNOWN_USERS = "known_users"


class MongoKnownUsers:
    def __init__(self, db: AsyncDatabase[Any], *, collection: str = KNOWN_USERS) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        """Lookups are by `_id` only."""

    async def get(self, user_id: str) -> KnownUser | None:
        doc = await self.coll.find_one({"_id": user_id})
        if doc is None:
            return None
        return KnownUser(user_id, doc.get("role"), doc.get("status", "active"))

    async def register(self, user_id: str, role: str) -> None:
        with contextlib.suppress(DuplicateKeyError):  # a racing upsert inserted it
            await self.coll.update_one(
                {"_id": user_id},
                {"$setOnInsert": {"role": role, "status": "active"}},
                upsert=True,
            )

    async def close(self, user_id: str) -> None:
        current = await self.coll.find_one({"_id": user_id}, {"status": 1})
        if current is not None and current.get("status") == "erased":
            return  # a tombstone stays one
        with contextlib.suppress(DuplicateKeyError):  # a racing upsert inserted it
            await self.coll.update_one(
                {"_id": user_id}, {"$set": {"status": "closed"}}, upsert=True
            )

    async def forget(self, user_id: str) -> bool:
        before = await self.coll.find_one_and_update(
            {"_id": user_id},
            {"$set": {"status": "erased"}, "$unset": {"role": ""}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return before is not None and before.get("status") != "erased"

"""`MongoSessionStore`: the officers' sessions in the console's own database.

Every replica reads the same records, so a session opened on one is honoured by the others,
survives a restart, and a sign-out on any of them ends it everywhere.

One document per session, `_id` = `session_key(id)` (the SHA-256 of the cookie's value, which
is never stored): `{subject_id, role, expires_at, last_seen, purge_at, sealed}`. `sealed`
holds the access token, the refresh token and the CSRF secret, encrypted with AES-256-GCM
(`PersonalDataCipher`) under the console's data key (`console:sessions` in the console's
`MongoKeystore`, wrapped under `CONSOLE_MASTER_KEY`); the record's `_id`, subject and role are
the associated data, so a sealed value moved to another record, or a record whose subject or
role was changed, does not open. A raw copy of the collection holds no usable token.

Expiry is checked on every read (token expiry, idleness); `purge_at`, the earlier of the two,
carries a TTL index so MongoDB deletes what nobody reads again. `refresh_claimed_until` marks
the one replica spending the session's refresh token (`claim_refresh`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.console.sessions import (
    REFRESH_CLAIM_SECONDS,
    Session,
    SessionTableFullError,
    new_session_id,
    session_key,
)
from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import PiiBlob
from mmgen.events.errors import EventsError
from mmgen.events.keys import Keystore

log = logging.getLogger(__name__)

#: The owner of the data key sealing every session's tokens.
SESSIONS_OWNER = "console:sessions"
COLLECTION = "sessions"


def _aad(key: str, subject_id: str, role: str) -> str:
    return f"console-session|{key}|{subject_id}|{role}"


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class MongoSessionStore:
    """The `SessionStore` port on MongoDB. Call `ensure_indexes()` once at start."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        keystore: Keystore,
        *,
        idle_seconds: float,
        max_sessions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = db[COLLECTION]
        self.cipher = PersonalDataCipher(keystore)
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock

    async def ensure_indexes(self) -> None:
        await self.sessions.create_index(
            [("purge_at", ASCENDING)], name="purge_at_ttl", expireAfterSeconds=0
        )

    def _purge_at(self, expires_at: float, last_seen: float) -> datetime:
        return _when(min(expires_at, last_seen + self.idle_seconds))

    async def _seal(self, session: Session) -> dict[str, Any]:
        secrets_ = {
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "csrf_token": session.csrf_token,
        }
        blob = await self.cipher.encrypt(
            SESSIONS_OWNER,
            _aad(session.key, session.subject_id, session.role),
            json.dumps(secrets_).encode("utf-8"),
        )
        return blob.model_dump(mode="json")

    async def open(
        self,
        access_token: str,
        subject_id: str,
        role: str,
        expires_at: float,
        refresh_token: str | None = None,
    ) -> Session:
        now = self.clock()
        if await self.count() >= self.max_sessions:
            raise SessionTableFullError("too many open sessions")
        session = Session(
            id=new_session_id(),
            access_token=access_token,
            subject_id=subject_id,
            role=role,
            expires_at=expires_at,
            refresh_token=refresh_token,
            last_seen=now,
        )
        await self.sessions.insert_one(
            {
                "_id": session.key,
                "subject_id": subject_id,
                "role": role,
                "expires_at": expires_at,
                "last_seen": now,
                "purge_at": self._purge_at(expires_at, now),
                "sealed": await self._seal(session),
            }
        )
        return session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = session_key(session_id)
        doc = await self.sessions.find_one({"_id": key})
        if doc is None:
            return None
        now = self.clock()
        if now >= float(doc["expires_at"]) or now - float(doc["last_seen"]) > self.idle_seconds:
            await self.sessions.delete_one({"_id": key})
            return None
        opened = await self._open_sealed(doc)
        if opened is None:
            await self.sessions.delete_one({"_id": key})
            return None
        await self.sessions.update_one(
            {"_id": key},
            {"$set": {"last_seen": now, "purge_at": self._purge_at(doc["expires_at"], now)}},
        )
        return Session(
            id=session_id,
            access_token=opened["access_token"],
            subject_id=str(doc["subject_id"]),
            role=str(doc["role"]),
            expires_at=float(doc["expires_at"]),
            refresh_token=opened.get("refresh_token"),
            csrf_token=opened["csrf_token"],
            last_seen=now,
        )

    async def _open_sealed(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The record's tokens; None (and an error logged) when they do not open: a record
        tampered with, or sealed under a master key this console no longer has."""
        try:
            blob = PiiBlob.model_validate(doc["sealed"])
            plain = await self.cipher.decrypt(
                blob, _aad(str(doc["_id"]), str(doc["subject_id"]), str(doc["role"]))
            )
        except (EventsError, ValueError, KeyError) as exc:
            log.error("console session record does not open: %s", type(exc).__name__)
            return None
        if not isinstance(plain, bytes):  # the sessions' key was shredded: nothing opens
            return None
        opened: dict[str, Any] = json.loads(plain)
        return opened

    async def claim_refresh(self, session: Session) -> bool:
        """One atomic update: it matches only while the token is the one this caller holds
        (same expiry) and nobody else's claim is running."""
        now = self.clock()
        claimed = await self.sessions.update_one(
            {
                "_id": session.key,
                "expires_at": session.expires_at,
                "$or": [
                    {"refresh_claimed_until": {"$exists": False}},
                    {"refresh_claimed_until": {"$lte": now}},
                ],
            },
            {"$set": {"refresh_claimed_until": now + REFRESH_CLAIM_SECONDS}},
        )
        return claimed.modified_count == 1

    async def renew(
        self, session: Session, access_token: str, expires_at: float, refresh: str | None
    ) -> None:
        session.access_token = access_token
        session.expires_at = expires_at
        session.refresh_token = refresh
        await self.sessions.update_one(
            {"_id": session.key},
            {
                "$set": {
                    "expires_at": expires_at,
                    "purge_at": self._purge_at(expires_at, session.last_seen),
                    "sealed": await self._seal(session),
                },
                "$unset": {"refresh_claimed_until": ""},
            },
        )

    async def close(self, session_id: str | None) -> None:
        if session_id:
            await self.sessions.delete_one({"_id": session_key(session_id)})

    async def count(self) -> int:
        return int(await self.sessions.count_documents({"purge_at": {"$gt": _when(self.clock())}}))

"""Server-side sessions: the officer's access token never reaches the browser.

The browser holds only an opaque, random session id (an httpOnly, `SameSite=Strict` cookie);
the store knows a session by the SHA-256 of that id (`session_key`), so whoever reads the
store cannot present a session from it. A session holds the officer's tokens and the CSRF
secret of the page; it ends when its token expires and cannot be refreshed at identity, after
`idle_seconds` without a request, or on sign-out.

`SessionStore` is the port; `MongoSessionStore` (mongo_sessions.py) is the real one, shared by
every replica and surviving a restart; `InMemorySessionStore` is for unit tests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

#: How long a claim to refresh a session's token holds (longer than a call to identity).
REFRESH_CLAIM_SECONDS = 30.0


class SessionTableFullError(Exception):
    """More sessions than `max_sessions` are open."""


def new_session_id() -> str:
    """256 random bits: the cookie's value, never stored."""
    return secrets.token_urlsafe(32)


def session_key(session_id: str) -> str:
    """What the store knows a session by: the SHA-256 of its id (the id is random, so a
    fast hash suffices)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass
class Session:
    id: str
    access_token: str = field(repr=False)
    subject_id: str
    role: str
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    last_seen: float = 0.0

    @property
    def key(self) -> str:
        return session_key(self.id)

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf_token)

    def ended(self, now: float, idle_seconds: float) -> bool:
        return now >= self.expires_at or now - self.last_seen > idle_seconds


class SessionStore(Protocol):
    """Port: sessions by id, with expiry on token lifetime and on idleness."""

    idle_seconds: float

    async def open(
        self,
        access_token: str,
        subject_id: str,
        role: str,
        expires_at: float,
        refresh_token: str | None = None,
    ) -> Session:
        """A new session (`SessionTableFullError` when `max_sessions` are open)."""
        ...

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of this id, marked as used now; None if unknown or ended."""
        ...

    async def claim_refresh(self, session: Session) -> bool:
        """True for the one caller, on any replica, that may spend the refresh token now
        (identity revokes a refresh token spent twice, and the officer with it); the others go
        on with the current token, which is still valid, until the claim lapses."""
        ...

    async def renew(
        self, session: Session, access_token: str, expires_at: float, refresh: str | None
    ) -> None:
        """The session goes on with a refreshed token (same id, same CSRF token)."""
        ...

    async def close(self, session_id: str | None) -> None:
        """End the session (sign-out, a refused refresh, a 401 from a service)."""
        ...

    async def count(self) -> int:
        """Sessions open now."""
        ...


class InMemorySessionStore:
    """`SessionStore` in a dict, for unit tests."""

    def __init__(
        self, *, idle_seconds: float, max_sessions: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._claims: dict[str, tuple[float, float]] = {}

    async def open(
        self,
        access_token: str,
        subject_id: str,
        role: str,
        expires_at: float,
        refresh_token: str | None = None,
    ) -> Session:
        self._sweep()
        if len(self._sessions) >= self.max_sessions:
            raise SessionTableFullError("too many open sessions")
        session = Session(
            id=new_session_id(),
            access_token=access_token,
            subject_id=subject_id,
            role=role,
            expires_at=expires_at,
            refresh_token=refresh_token,
            last_seen=self.clock(),
        )
        self._sessions[session.key] = session
        return session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = session_key(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if session.ended(now, self.idle_seconds):
            self._sessions.pop(key, None)
            return None
        session.last_seen = now
        return session

    async def claim_refresh(self, session: Session) -> bool:
        now = self.clock()
        expires_at, until = self._claims.get(session.key, (None, 0.0))
        if expires_at == session.expires_at and until > now:
            return False
        self._claims[session.key] = (session.expires_at, now + REFRESH_CLAIM_SECONDS)
        return True

    async def renew(
        self, session: Session, access_token: str, expires_at: float, refresh: str | None
    ) -> None:
        self._claims.pop(session.key, None)
        session.access_token = access_token
        session.expires_at = expires_at
        session.refresh_token = refresh

    async def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_key(session_id), None)

    async def count(self) -> int:
        self._sweep()
        return len(self._sessions)

    def _sweep(self) -> None:
        now = self.clock()
        for key, session in list(self._sessions.items()):
            if session.ended(now, self.idle_seconds):
                del self._sessions[key]

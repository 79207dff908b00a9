"""Server-side sessions: the officer's access token never reaches the browser.

The browser holds only an opaque, random session id (an httpOnly, `SameSite=Strict` cookie);
the token and the session's CSRF secret live here, in the process's memory. A session ends
when its token expires and cannot be refreshed at identity, after `idle` seconds without a
request, or on sign-out. Memory is the
right place for something this short-lived and this sensitive (no copy of a bearer token in a
database); the price is that a restart signs everyone out and that two replicas need sticky
sessions (README, "Deploying").
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class SessionTableFullError(Exception):
    """More sessions than `max_sessions` are open."""


@dataclass
class Session:
    id: str
    access_token: str
    subject_id: str
    role: str
    expires_at: float
    refresh_token: str | None = None
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = 0.0

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf_token)


class InMemorySessionStore:
    """Sessions by id, with expiry on token lifetime and on idleness."""

    def __init__(
        self, *, idle_seconds: float, max_sessions: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def open(
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
            id=secrets.token_urlsafe(32),
            access_token=access_token,
            subject_id=subject_id,
            role=role,
            expires_at=expires_at,
            refresh_token=refresh_token,
            last_seen=self.clock(),
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now >= session.expires_at or now - session.last_seen > self.idle_seconds:
            self._sessions.pop(session_id, None)
            return None
        session.last_seen = now
        return session

    def renew(
        self, session: Session, access_token: str, expires_at: float, refresh: str | None
    ) -> None:
        """The session goes on with a refreshed token (same id, same CSRF token)."""
        session.access_token = access_token
        session.expires_at = expires_at
        session.refresh_token = refresh

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _sweep(self) -> None:
        now = self.clock()
        for sid, session in list(self._sessions.items()):
            if now >= session.expires_at or now - session.last_seen > self.idle_seconds:
                del self._sessions[sid]

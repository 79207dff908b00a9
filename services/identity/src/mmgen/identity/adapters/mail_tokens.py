"""Signed one-time tokens for mailed links: email verification and password reset.

A token is `<kind>.<user id>.<version>.<expires>.<signature>`: the stream version of the event
it answers (the registration or correction that set the email; the reset request), its expiry
(Unix seconds) and an HMAC-SHA256 over all of it under a sub-key of the master key. The
signature makes forged or altered tokens fail before anything is looked up; the service then
claims `<kind>:<user>:<version>` once (`OneTimeUses`), so a token works a single time. Tokens
are derived from the events they answer, so the mail outbox can build them again after a crash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Kind = Literal["verify", "reset"]


@dataclass(frozen=True)
class OneTimeToken:
    kind: Kind
    user_id: str
    version: int
    expires_at: datetime

    @property
    def use_key(self) -> str:
        return f"{self.kind}:{self.user_id}:{self.version}"


class OneTimeTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def issue(self, token: OneTimeToken) -> str:
        body = f"{token.kind}.{token.user_id}.{token.version}.{int(token.expires_at.timestamp())}"
        return f"{body}.{self._sign(body)}"

    def parse(self, raw: str, kind: Kind, now: datetime | None = None) -> OneTimeToken | None:
        """The token if it is well formed, of `kind`, signed by us and not expired; else None."""
        if not raw.isascii():
            return None
        parts = raw.strip().split(".")
        if len(parts) != 5:
            return None
        got_kind, user_id, version, expires, signature = parts
        if not hmac.compare_digest(self._sign(".".join(parts[:4])), signature):
            return None
        if got_kind != kind:
            return None
        try:
            canonical = str(uuid.UUID(user_id))
            number, until = int(version), datetime.fromtimestamp(int(expires), UTC)
        except (ValueError, OverflowError, OSError):
            return None
        if canonical != user_id or number < 1 or until <= (now or datetime.now(UTC)):
            return None
        return OneTimeToken(kind, user_id, number, until)

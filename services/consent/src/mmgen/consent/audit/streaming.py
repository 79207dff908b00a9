"""Limits of `/audit/stream`: concurrent streams per principal, and when a stream must end.

A stream outlives the request check that opened it, so what that check established is
re-established while it runs: it ends at its token's `exp`, and within `recheck_seconds` of
identity closing or erasing the principal's account (the runtime's token revocations).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmgen.consent.audit.domain import AuditError

if TYPE_CHECKING:
    from mmgen.platform.auth import Principal
    from mmgen.platform.auth.denylist import SubjectDenylist

STREAMS_PER_PRINCIPAL = 2
RECHECK_SECONDS = 5.0


class AuditStreamLimitError(AuditError):
    """The principal already holds as many open streams as allowed (a 429)."""


@dataclass
class StreamSlot:
    """One open stream of one principal; `release()` is idempotent."""

    slots: StreamSlots
    subject_id: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.release(self.subject_id)


@dataclass
class StreamSlots:
    """Open streams per principal on this replica."""

    per_principal: int = STREAMS_PER_PRINCIPAL
    _open: dict[str, int] = field(default_factory=dict)

    def take(self, subject_id: str) -> StreamSlot:
        held = self._open.get(subject_id, 0)
        if held >= self.per_principal:
            raise AuditStreamLimitError(
                f"{held} audit streams are open for this caller; at most {self.per_principal}"
                " (CONSENT_AUDIT_STREAMS_PER_PRINCIPAL): close one first"
            )
        self._open[subject_id] = held + 1
        return StreamSlot(self, subject_id)

    def release(self, subject_id: str) -> None:
        held = self._open.get(subject_id, 0) - 1
        if held > 0:
            self._open[subject_id] = held
        else:
            self._open.pop(subject_id, None)

    def open_for(self, subject_id: str) -> int:
        return self._open.get(subject_id, 0)


class StreamWatch:
    """Whether a running stream may go on: token not expired, principal not revoked, token not
    issued before the principal's last password change."""

    def __init__(
        self,
        principal: Principal,
        denylist: SubjectDenylist | None,
        recheck_seconds: float,
    ) -> None:
        exp = principal.claims.get("exp")
        self.expires_at = float(exp) if isinstance(exp, int | float) else None
        iat = principal.claims.get("iat")
        self.issued_at = float(iat) if isinstance(iat, int | float) else None
        self.subject_id = principal.subject_id
        self.denylist = denylist
        self.recheck_seconds = recheck_seconds
        self._next_check = time.monotonic() + recheck_seconds

    def seconds_left(self) -> float | None:
        """Until the token expires (None: the token has no `exp`)."""
        return None if self.expires_at is None else self.expires_at - time.time()

    async def may_continue(self) -> bool:
        left = self.seconds_left()
        if left is not None and left <= 0:
            return False
        if time.monotonic() < self._next_check:
            return True
        # Advanced even without a denylist: `wait_bound` waits until the next check.
        self._next_check = time.monotonic() + self.recheck_seconds
        if self.denylist is None:
            return True
        if await self.denylist.is_denied(self.subject_id):
            return False
        not_before = await self.denylist.not_before(self.subject_id)
        return not_before is None or self.issued_at is None or self.issued_at >= not_before

    def wait_bound(self, seconds: float) -> float:
        """`seconds`, shortened so a wait never outlasts the token nor the next recheck."""
        bound = min(seconds, max(0.0, self._next_check - time.monotonic()))
        left = self.seconds_left()
        return bound if left is None else max(0.0, min(bound, left))

"""Auditing of refused access: every 401/403 on an authenticated route reaches a recorder.

The privacy policy promises that every refusal of access to personal data is itself audited.
The app factory calls the app's `AccessDenialRecorder` once per refused request, whichever code
refused it (an auth dependency, a service's own membership check mapped to 403, a plain
`HTTPException(403)`). A service that holds personal data plugs in a recorder that appends a
`deny` event to its event store; the default only writes a structured log line, which is
acceptable only for a service without personal data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from starlette.requests import Request

if TYPE_CHECKING:
    from mmgen.platform.auth.principal import Principal

logger = logging.getLogger("mmgen.platform.denials")


@dataclass(frozen=True)
class DenialReason:
    """Why access was refused: the problem slug (`purpose-required`, ...), status and detail."""

    code: str
    status: int
    detail: str

    def __str__(self) -> str:
        return self.code


@runtime_checkable
class AccessDenialRecorder(Protocol):
    """Port: persist one refusal. `principal` is None when the caller was not authenticated."""

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None: ...


class LoggingDenialRecorder:
    """Default recorder: one structured WARNING log line per refusal.

    Only for services that hold no personal data; the others must record denials in their
    event store (audit log), since log lines are neither durable nor hash-chained.
    """

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        logger.warning(
            "access denied",
            extra={
                "denial_code": reason.code,
                "status": reason.status,
                "method": request.method,
                "path": request.url.path,
                "actor_id": principal.subject_id if principal else None,
                "actor_role": str(principal.role) if principal else None,
            },
        )


class InMemoryDenialRecorder:
    """Keeps every denial in a list; for tests of services and of the platform itself."""

    def __init__(self) -> None:
        self.denials: list[tuple[Principal | None, str, str, DenialReason]] = []

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        self.denials.append((principal, request.method, request.url.path, reason))


_RECORDED_FLAG = "mmgen_access_denial_recorded"


async def record_access_denial(request: Request, reason: DenialReason) -> None:
    """Hand one refusal to the app's recorder, at most once per request.

    Services call this themselves when they refuse without a 401/403 (for example a 404 that
    hides a resource the caller may not see). A failing recorder is logged at ERROR and does
    not turn the refusal into something else: the caller is refused either way.
    """
    if getattr(request.state, _RECORDED_FLAG, False):
        return
    setattr(request.state, _RECORDED_FLAG, True)
    recorder: AccessDenialRecorder | None = getattr(request.app.state, "denial_recorder", None)
    if recorder is None:
        recorder = LoggingDenialRecorder()
    principal = getattr(request.state, "principal", None)
    try:
        await recorder.record(principal, request, reason)
    except Exception:
        logger.exception(
            "could not record an access denial",
            extra={"denial_code": reason.code, "path": request.url.path},
        )

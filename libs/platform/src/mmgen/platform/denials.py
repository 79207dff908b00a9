"""Auditing of refused access: every 401/403 on an authenticated route reaches a recorder.

The privacy policy promises that every refusal of access to personal data is itself audited.
The app factory calls the app's `AccessDenialRecorder` once per refused request, whichever code
refused it (an auth dependency, a service's own membership check mapped to 403, a plain
`HTTPException(403)`), and counts it in `access_denials_total` (Prometheus). A service that
holds personal data plugs in a recorder that appends a `deny` event to its event store; the
default only writes a structured log line, which is acceptable only for a service without
personal data.

Anyone can send requests without a token, or with garbage for one: writing each such refusal
to the audit log would let anonymous traffic fill it. `AggregatingDenialRecorder` keeps
refusals of an authenticated caller one entry each (a real person was refused: that is what
the audit is for) and samples anonymous and invalid-token refusals: at most one entry per
route, status and code per window, carrying how many refusals it stands for since the last
one. The counter still counts every refusal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from starlette.requests import Request

from mmgen.platform.metrics import HttpMetrics, route_template

if TYPE_CHECKING:
    from mmgen.platform.auth.principal import Principal

logger = logging.getLogger("mmgen.platform.denials")


@dataclass(frozen=True)
class DenialReason:
    """Why access was refused: the problem slug (`purpose-required`, ...), status and detail.

    `reason` is what only the audit may know (e.g. why a token was invalid, when the answer
    is a generic 401); `occurrences` how many refusals one sampled record stands for.
    """

    code: str
    status: int
    detail: str
    reason: str | None = None
    occurrences: int = 1

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


#: Methods keep their name in sampling keys; any other is one key (the key space stays bounded).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class _Window:
    opened: float
    suppressed: int = 0


class AggregatingDenialRecorder:
    """Authenticated refusals go to `inner` one by one; anonymous ones are sampled.

    A refusal without a verified principal (no token, an invalid one) opens a window for its
    (method, route template, status, code): the first is recorded at once with `occurrences`
    = 1 + those suppressed since the previous record of that key; the next ones within
    `window` seconds are only counted. Route templates and codes are finite, so the records
    an anonymous caller can cause are bounded per window, however fast they send. Windows are
    per process: with N replicas, at most N records per key and window.
    """

    def __init__(
        self,
        inner: AccessDenialRecorder,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.window = window
        self._clock = clock
        self._windows: dict[tuple[str, str, int, str], _Window] = {}

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        if principal is not None:
            await self.inner.record(principal, request, reason)
            return
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        key = (method, route_template(request.scope), reason.status, reason.code)
        now = self._clock()
        current = self._windows.get(key)
        if current is not None and now - current.opened < self.window:
            current.suppressed += 1
            return
        carried = current.suppressed if current is not None else 0
        self._windows[key] = _Window(opened=now)
        await self.inner.record(None, request, replace(reason, occurrences=1 + carried))

    def suppressed(self) -> int:
        """Refusals counted but not yet carried by a record (they go with the next one)."""
        return sum(window.suppressed for window in self._windows.values())


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
    principal = getattr(request.state, "principal", None) or getattr(
        request.state, "refused_principal", None
    )
    metrics = getattr(request.app.state, "metrics", None)
    if isinstance(metrics, HttpMetrics):
        metrics.denials.labels(
            request.method if request.method in KNOWN_METHODS else "OTHER",
            route_template(request.scope),
            str(reason.status),
            reason.code,
            "anonymous" if principal is None else "authenticated",
        ).inc()
    try:
        await recorder.record(principal, request, reason)
    except Exception:
        logger.exception(
            "could not record an access denial",
            extra={"denial_code": reason.code, "path": request.url.path},
        )

"""The access-denial recorder of identity: every 401/403 becomes an `identity.AccessDenied` event.

Each denial is its own stream (`denial-<uuid>`), so recording never contends with an account's
stream. The event names the route template (not the raw URL, which could carry anything), the
refusal code and the caller, and — when the refused request was about a user — that user as
the subject, so the subject's audit trail shows the attempt.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.identity.domain.events import AccessDenied

if TYPE_CHECKING:
    from starlette.requests import Request

    from mmgen.events.repository import EventSourcedRepository
    from mmgen.platform.auth import Principal
    from mmgen.platform.denials import DenialReason


def _uuid_or_none(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError):
        return None


class EventStoreDenialRecorder:
    """`AccessDenialRecorder` appending a `deny` event to identity's event store."""

    def __init__(self, repository: EventSourcedRepository) -> None:
        self.repository = repository

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        route = request.scope.get("route")
        path = getattr(route, "path", None) or request.url.path[:200]
        params = request.path_params
        target = _uuid_or_none(params.get("user_id") or params.get("subject_id"))
        subject = target
        if subject is None and principal is not None and not principal.is_service:
            subject = _uuid_or_none(principal.subject_id)
        purpose = getattr(request.state, "purpose", None)
        event = NewEvent(
            AccessDenied(
                code=reason.code,
                status=reason.status,
                method=request.method,
                path=path,
                target_user_id=target,
            ),
            subject_id=subject,
            actor=Actor(**principal.actor()) if principal is not None else None,
            purpose=str(purpose) if purpose else None,
            resource_id=f"{request.method} {path}",
        )
        await self.repository.append(f"denial-{new_event_id()}", 0, [event])

"""The audit trail a service writes about itself: refusals, reads of personal data, exports.

Each record is a standard event (`mmgen.runtime.contract`) appended as a stream of its own,
so recording never contends with an aggregate's stream. Only ids, codes, categories and field
names are recorded, never values; a subject is named only when it is a well-formed id.
`EventStoreDenialRecorder` is the platform's `AccessDenialRecorder` on top of it: a 401 or 403
of the service's routes becomes an `<svc>.AccessDenied` event — each one for a verified caller,
a sample of the anonymous ones (`build_service_app` puts the platform's
`AggregatingDenialRecorder` in front of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends

from mmgen.events.envelope import Actor
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.platform.auth import CurrentPrincipal
from mmgen.platform.metrics import route_template
from mmgen.runtime.contract import (
    CODE_MAX,
    ROUTE_MAX,
    StandardEvents,
    well_formed_id,
)

if TYPE_CHECKING:
    from starlette.requests import Request

    from mmgen.events.repository import EventSourcedRepository
    from mmgen.platform.auth import Principal
    from mmgen.platform.denials import DenialReason


def actor_of(principal: Principal | None) -> Actor | None:
    """The event actor of a verified caller (a service token's actor is the service)."""
    if principal is None:
        return None
    return Actor(id=principal.subject_id, role=str(principal.role))


async def current_actor(principal: CurrentPrincipal) -> Actor:
    return Actor(id=principal.subject_id, role=str(principal.role))


CurrentActor = Annotated[Actor, Depends(current_actor)]
"""The verified caller as an event actor (401 without a valid token)."""


class AuditTrail:
    """Appends the service's standard audit events."""

    def __init__(self, repository: EventSourcedRepository, events: StandardEvents) -> None:
        self.repository = repository
        self.events = events

    async def _append(self, event: NewEvent[Any]) -> None:
        await self.repository.append(f"audit:{event.event_id}", 0, [event])

    async def denied(
        self,
        actor: Actor | None,
        *,
        code: str,
        status: int,
        method: str,
        route: str,
        subject_id: str | None = None,
        purpose: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        reason: str | None = None,
        occurrences: int = 1,
    ) -> None:
        """A refused request (route template, code; target and subject only as ids)."""
        target = well_formed_id(target_id)
        event_id = new_event_id()
        await self._append(
            NewEvent(
                self.events.AccessDenied(
                    code=code[:CODE_MAX],
                    status=status,
                    method=method[:10],
                    route=route[:ROUTE_MAX],
                    target_type=(target_type or None) if target else None,
                    target_id=target,
                    reason=reason[:CODE_MAX] if reason else None,
                    occurrences=max(1, occurrences),
                ),
                subject_id=well_formed_id(subject_id),
                actor=actor,
                purpose=purpose,
                resource_id=f"{method} {route}"[:ROUTE_MAX],
                event_id=event_id,
            )
        )

    async def accessed(
        self,
        actor: Actor | None,
        *,
        route: str,
        resource_type: str,
        resource_id: str,
        categories: Iterable[str],
        purpose: str | None,
        subject_id: str | None = None,
        fields: Sequence[str] = (),
        records: int = 1,
    ) -> None:
        """A successful read of personal data: categories and field names, never values."""
        await self._append(
            NewEvent(
                self.events.DataAccessed(
                    route=route[:ROUTE_MAX], fields=list(fields), records=records
                ),
                subject_id=well_formed_id(subject_id),
                actor=actor,
                purpose=purpose,
                resource_id=f"{resource_type}:{resource_id}"[:ROUTE_MAX],
                categories=tuple(categories),
            )
        )

    async def exported(
        self,
        actor: Actor | None,
        *,
        subject_id: str,
        purpose: str,
        records: int,
        events: int,
        categories: Iterable[str] = (),
    ) -> None:
        """An export of a subject's data handed to a caller."""
        await self._append(
            NewEvent(
                self.events.SubjectExported(records=records, events=events),
                subject_id=well_formed_id(subject_id),
                actor=actor,
                purpose=purpose,
                resource_id=subject_id,
                categories=tuple(categories),
            )
        )


class EventStoreDenialRecorder:
    """`AccessDenialRecorder`: each refusal it is given becomes an `<svc>.AccessDenied`."""

    #: Path parameters that name the subject a refused request was about.
    SUBJECT_PARAMS = ("subject_id", "user_id")

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        params = request.path_params
        subject = next(
            (well_formed_id(params[name]) for name in self.SUBJECT_PARAMS if name in params), None
        )
        target_type, target_id = None, None
        for name, value in params.items():
            if name.endswith("_id") and name not in self.SUBJECT_PARAMS:
                target_type, target_id = name[: -len("_id")], well_formed_id(value)
                break
        declared = getattr(request.state, "purpose", None)
        await self.trail.denied(
            actor_of(principal),
            code=reason.code,
            status=reason.status,
            method=request.method,
            route=str(route_template(request.scope)),
            subject_id=subject,
            purpose=str(declared) if declared else None,
            target_type=target_type,
            target_id=target_id,
            reason=reason.reason,
            occurrences=reason.occurrences,
        )

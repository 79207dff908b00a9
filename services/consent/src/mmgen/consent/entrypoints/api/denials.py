"""Refusals recorded in the event store: every 401/403 becomes a `consent.AccessDenied` event."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request

from mmgen.platform import DenialReason
from mmgen.platform.metrics import route_template
from mmgen.platform.telemetry import current_traceparent

if TYPE_CHECKING:
    from mmgen.consent.service_layer.consents import ConsentService
    from mmgen.platform.auth import Principal

from mmgen.events.envelope import Actor

log = logging.getLogger(__name__)


class EventStoreDenialRecorder:
    """`AccessDenialRecorder` appending a `deny` event (ids and codes, never contents)."""

    def __init__(self, service: ConsentService) -> None:
        self.service = service

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        template = route_template(request.scope)
        subject = request.path_params.get("subject_id")
        declared = getattr(request.state, "purpose", None)
        await self.service.record_denial(
            actor=Actor(id=principal.subject_id, role=str(principal.role)) if principal else None,
            subject_id=str(subject) if subject else None,
            purpose=str(declared) if declared else None,
            code=reason.code,
            status=reason.status,
            method=request.method,
            route=str(template)[:200],
            traceparent=current_traceparent(),
        )

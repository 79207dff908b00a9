"""The service directory as retention uses it: itself answered in-process, the others remote.

Retention is one of the services an erasure must reach and an access package must cover.
Its own export and footprint come straight from its participant — no HTTP call to itself —
and its own export is audited as `retention.SubjectExported`, exactly as the runtime's
`/internal/subjects/{id}/export` route audits everybody else's.
"""

from __future__ import annotations

from mmgen.events.envelope import Actor
from mmgen.retention.domain.contract import Purpose
from mmgen.retention.service_layer.ports import ServiceDirectory
from mmgen.runtime.contract import Footprint, SubjectExport
from mmgen.runtime.erasure import ErasureParticipant
from mmgen.runtime.trail import AuditTrail

LEGAL_COMPLIANCE = "legal_compliance"


class SelfAnsweringDirectory:
    """`ServiceDirectory`: `name` from `participant`, every other service from `remote`."""

    def __init__(
        self,
        remote: ServiceDirectory,
        *,
        name: str,
        participant: ErasureParticipant,
        trail: AuditTrail,
    ) -> None:
        self.remote = remote
        self.name = name
        self.participant = participant
        self.trail = trail

    def services(self) -> tuple[str, ...]:
        return self.remote.services()

    async def export(self, service: str, subject_id: str) -> SubjectExport:
        if service != self.name:
            return await self.remote.export(service, subject_id)
        package = await self.participant.export(subject_id)
        await self.trail.exported(
            Actor(id=self.name, role="service"),
            subject_id=subject_id,
            purpose=LEGAL_COMPLIANCE,
            records=len(package.records),
            events=len(package.events),
            categories=sorted({c for e in package.events for c in e.categories}),
        )
        return package

    async def footprint(self, service: str, subject_id: str) -> Footprint:
        if service != self.name:
            return await self.remote.footprint(service, subject_id)
        return await self.participant.footprint(subject_id)

    async def purposes(self) -> list[Purpose]:
        return await self.remote.purposes()

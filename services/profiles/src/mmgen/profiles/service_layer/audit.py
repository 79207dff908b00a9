"""What the use cases ask the runtime's `AuditTrail` to record: reads and refusals, ids only.

A use case returns (or raises with) these records; the HTTP edge records them with the caller
and the route template, so the use cases stay free of web code and the trail of I/O in tests:

    read = await read_profile(...)
    for access in read.accesses:
        await access.record(runtime.trail, actor, route="/profiles/{user_id}")

401 and 403 refusals are recorded by the runtime's denial recorder; `Denial` is for the
refusals that answer 404 (a profile that exists but is hidden from the caller), which the
recorder does not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmgen.profiles.domain.events import RESOURCE_PROFILE

if TYPE_CHECKING:
    from mmgen.events.envelope import Actor
    from mmgen.runtime.trail import AuditTrail


@dataclass(frozen=True)
class Access:
    """A read of personal data: whose, which categories and field names, for which purpose."""

    resource_id: str
    categories: tuple[str, ...]
    purpose: str | None
    subject_id: str | None = None
    fields: tuple[str, ...] = ()
    records: int = 1
    resource_type: str = RESOURCE_PROFILE

    async def record(self, trail: AuditTrail, actor: Actor | None, *, route: str) -> None:
        await trail.accessed(
            actor,
            route=route,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            categories=self.categories,
            purpose=self.purpose,
            subject_id=self.subject_id,
            fields=self.fields,
            records=self.records,
        )


@dataclass(frozen=True)
class Denial:
    """A refused read answered as 404 (the caller must not learn the profile exists)."""

    code: str
    subject_id: str
    purpose: str | None
    status: int = 404

    async def record(
        self, trail: AuditTrail, actor: Actor | None, *, method: str, route: str
    ) -> None:
        await trail.denied(
            actor,
            code=self.code,
            status=self.status,
            method=method,
            route=route,
            subject_id=self.subject_id,
            purpose=self.purpose,
            target_type=RESOURCE_PROFILE,
            target_id=self.subject_id,
        )

"""Typed dependencies of retention's routes: the wired service, who may do what, purposes.

Staff and compliance act here for one purpose only, `legal_compliance` (answering privacy
requests is a legal obligation): any other declared purpose is refused (403, audited).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import (
    Principal,
    ProcessingPurpose,
    Purpose,
    PurposeNotAllowedError,
    require_purpose,
    require_roles,
)
from mmgen.retention.bootstrap import Retention

LEGAL = ProcessingPurpose.legal_compliance


def container_of(request: Request) -> Retention:
    retention: Retention = request.app.state.retention
    return retention


Container = Annotated[Retention, Depends(container_of)]
Compliance = Annotated[Principal, Depends(require_roles("compliance"))]
StaffOrCompliance = Annotated[Principal, Depends(require_roles("staff", "compliance"))]
PolicyWriter = Annotated[Principal, Depends(require_roles("admin", "compliance"))]
LegalCompliance = Annotated[ProcessingPurpose, Depends(require_purpose(LEGAL))]


def legal_or_none(purpose: ProcessingPurpose | None) -> ProcessingPurpose | None:
    """A declared purpose other than `legal_compliance` is refused; none is fine (subjects)."""
    if purpose is not None and purpose is not LEGAL:
        raise PurposeNotAllowedError(purpose, [LEGAL])
    return purpose


async def declared_legal_purpose(purpose: Purpose) -> ProcessingPurpose | None:
    """`X-Purpose`: required of staff and compliance (then `legal_compliance`), optional for
    subjects."""
    return legal_or_none(purpose)


OptionalLegalPurpose = Annotated[ProcessingPurpose | None, Depends(declared_legal_purpose)]

"""Typed dependencies of retention's routes: the wired service, who may do what, purposes.

Staff, compliance and admin act here for one purpose only, `legal_compliance` (answering
privacy requests and keeping data no longer than the law allows are legal obligations): every
route takes `LegalPurpose`, which requires it of them and refuses any other purpose declared
by anyone (403 `purpose-not-allowed`, audited). A subject acting on their own requests
declares none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import (
    Principal,
    ProcessingPurpose,
    accepts_purposes,
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
LegalPurpose = Annotated[ProcessingPurpose | None, Depends(accepts_purposes(LEGAL))]

"""Typed dependencies of identity's routes: the wired service, role-checked principals and the
purposes a staff read of an account accepts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.identity.bootstrap import IdentityService
from mmgen.platform.auth import (
    Principal,
    ProcessingPurpose,
    accepts_purposes,
    require_roles,
    require_service,
)


def get_identity(request: Request) -> IdentityService:
    identity: IdentityService = request.app.state.identity
    return identity


Service = Annotated[IdentityService, Depends(get_identity)]
Person = Annotated[
    Principal, Depends(require_roles("client", "creator", "staff", "compliance", "admin"))
]
#: Any person, also a privileged role signed in without a second factor: only for enrolling one.
Enrolling = Annotated[
    Principal,
    Depends(require_roles("client", "creator", "staff", "compliance", "admin", single_factor=True)),
]
StaffReader = Annotated[Principal, Depends(require_roles("staff", "compliance"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
AdminCli = Annotated[Principal, Depends(require_service("admin-cli"))]
#: Why staff or compliance may read someone's account (contact and business details): to
#: help them (support), to investigate abuse of it (security), for a legal obligation
#: (legal_compliance), to bill or pay them (payment_processing). Not project_execution:
#: a project's people reach each other through the project, not through the account.
AccountReadPurpose = Annotated[
    ProcessingPurpose | None,
    Depends(
        accepts_purposes(
            ProcessingPurpose.support,
            ProcessingPurpose.security,
            ProcessingPurpose.legal_compliance,
            ProcessingPurpose.payment_processing,
        )
    ),
]

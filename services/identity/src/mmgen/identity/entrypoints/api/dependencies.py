"""Typed dependencies of identity's routes: the wired service and role-checked principals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.identity.bootstrap import IdentityService
from mmgen.platform.auth import Principal, require_roles, require_service


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

"""Typed dependencies of the profiles routes: the wired service, the callers, the viewer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import Principal, ProcessingPurpose, accepts_purposes, require_roles
from mmgen.profiles.bootstrap import ProfilesService
from mmgen.profiles.domain.reveal import PERSON_ROLES, Viewer
from mmgen.profiles.service_layer.profiles import viewer_of


def service_of(request: Request) -> ProfilesService:
    service: ProfilesService = request.app.state.profiles
    return service


Container = Annotated[ProfilesService, Depends(service_of)]
#: Only creators have a profile of their own (403 for anyone else, recorded as a denial).
Creator = Annotated[Principal, Depends(require_roles("creator"))]
#: People only: service tokens read profiles through `/internal/subjects/...` or not at all.
Person = Annotated[Principal, Depends(require_roles(*sorted(PERSON_ROLES)))]
#: Why someone else's profile is read or searched: to staff or run a project with the
#: creator (project_execution, the only purpose that can reveal sensitive fields), to help
#: the creator or a client (support), for a legal obligation (legal_compliance). A creator's
#: own routes (`/profiles/me...`) take no purpose: it is their own data.
ProfileReadPurpose = Annotated[
    ProcessingPurpose | None,
    Depends(
        accepts_purposes(
            ProcessingPurpose.project_execution,
            ProcessingPurpose.support,
            ProcessingPurpose.legal_compliance,
        )
    ),
]


def viewer(who: Principal, purpose: ProcessingPurpose | None) -> Viewer:
    """The caller as the reveal rule sees them, with the purpose declared in `X-Purpose`
    (required of staff, compliance and admin by `ProfileReadPurpose`; others refused)."""
    return viewer_of(who, str(purpose) if purpose is not None else None)

"""Typed dependencies of the profiles routes: the wired service, the callers, the viewer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import Principal, ProcessingPurpose, require_roles
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


def viewer(who: Principal, purpose: ProcessingPurpose | None) -> Viewer:
    """The caller as the reveal rule sees them, with the purpose declared in `X-Purpose`
    (required of staff, compliance and admin by `Purpose`; unknown ones refused for all)."""
    return viewer_of(who, str(purpose) if purpose is not None else None)

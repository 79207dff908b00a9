"""What every route of the projects API takes first: the wired service and the caller.

`CurrentCaller` is the verified caller (401 without a valid token), their declared purpose
(required for staff, compliance and admin: 403 without one, recorded by the platform) and the
request's route template and method — what the use cases audit reads and refusals under.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import CurrentPrincipal
from mmgen.platform.auth.dependencies import Purpose
from mmgen.platform.metrics import route_template
from mmgen.projects.bootstrap import Projects
from mmgen.projects.service_layer.caller import Caller


def projects_service(request: Request) -> Projects:
    service: Projects = request.app.state.projects
    return service


async def current_caller(request: Request, principal: CurrentPrincipal, purpose: Purpose) -> Caller:
    return Caller.of(principal, purpose, route_template(request.scope), request.method)


Service = Annotated[Projects, Depends(projects_service)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]

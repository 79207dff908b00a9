"""What every route of the projects API takes first: the wired service and the caller.

`CurrentCaller` is the verified caller (401 without a valid token), their declared purpose
and the request's route template and method — what the use cases audit reads and refusals
under. Every project route accepts the purposes the access table (`domain.access`) can grant
anything for: `project_execution` and `support` (staff members), `legal_compliance`
(compliance). Staff, compliance and admin must declare one; any other purpose is 403
`purpose-not-allowed` before the project is looked at (recorded by the platform).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mmgen.platform.auth import CurrentPrincipal, ProcessingPurpose, accepts_purposes
from mmgen.platform.metrics import route_template
from mmgen.projects.bootstrap import Projects
from mmgen.projects.domain.access import STAFF_PURPOSES
from mmgen.projects.service_layer.caller import Caller

#: The purposes that justify any project route: the staff's and compliance's.
PROJECT_PURPOSES = (*sorted(STAFF_PURPOSES), ProcessingPurpose.legal_compliance)
ProjectPurpose = Annotated[ProcessingPurpose | None, Depends(accepts_purposes(*PROJECT_PURPOSES))]


def projects_service(request: Request) -> Projects:
    service: Projects = request.app.state.projects
    return service


async def current_caller(
    request: Request, principal: CurrentPrincipal, purpose: ProjectPurpose
) -> Caller:
    return Caller.of(principal, purpose, route_template(request.scope), request.method)


Service = Annotated[Projects, Depends(projects_service)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]

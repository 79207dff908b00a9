"""`/projects`: create, list mine, read, correct, change status, manage members.

Thin: each route turns its request into one use case call and its result into a response
model. Who may do what is decided by the use cases' gate (one place), never here.
"""

# No `from __future__ import annotations`: the page dependency is made from settings inside
# `router()`, and FastAPI must see the annotations naming it as objects, not strings.
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from mmgen.platform.pagination import CursorPage, PageRequest, pagination
from mmgen.projects.entrypoints.api.dependencies import CurrentCaller, Service
from mmgen.projects.entrypoints.api.schemas import (
    MemberIn,
    ProjectChangeOut,
    ProjectFactsOut,
    ProjectIn,
    ProjectOut,
    ProjectPatchIn,
    ProjectSummaryOut,
    StatusIn,
    page_out,
)
from mmgen.projects.settings import ProjectsSettings


def router(settings: ProjectsSettings) -> APIRouter:
    api = APIRouter(prefix="/projects", tags=["projects"])
    ProjectsPage = Annotated[
        PageRequest,
        Depends(
            pagination(
                default_limit=settings.projects_page_default,
                max_limit=settings.projects_page_max,
            )
        ),
    ]

    @api.post(
        "", name="create_project", status_code=status.HTTP_201_CREATED, response_model=ProjectOut
    )
    async def create_project(body: ProjectIn, caller: CurrentCaller, svc: Service) -> ProjectOut:
        """Create a project owned by the calling client; it starts `open`."""
        view = await svc.projects.create(
            caller,
            title=body.title,
            requirements=body.requirements,
            budget_band=body.budget,
            deadline=body.deadline,
        )
        return ProjectOut.of_view(view)

    @api.get("", name="list_projects", response_model=CursorPage[ProjectSummaryOut])
    async def list_projects(
        caller: CurrentCaller, svc: Service, page: ProjectsPage
    ) -> CursorPage[ProjectSummaryOut]:
        """My projects (owned or joined), newest first; the titles shown are a recorded read."""
        read = await svc.projects.list_mine(caller, limit=page.limit, position=page.position)
        return page_out(read.value, ProjectSummaryOut.of)

    @api.get("/{project_id}", name="get_project", response_model=ProjectOut)
    async def get_project(project_id: uuid.UUID, caller: CurrentCaller, svc: Service) -> ProjectOut:
        """The project with its title, requirements and members (a recorded read)."""
        read = await svc.projects.get(caller, str(project_id))
        return ProjectOut.of_view(read.value)

    @api.patch("/{project_id}", name="update_project", response_model=ProjectChangeOut)
    async def update_project(
        project_id: uuid.UUID, body: ProjectPatchIn, caller: CurrentCaller, svc: Service
    ) -> ProjectChangeOut:
        """Correct title, requirements, budget or deadline (the owner)."""
        change = await svc.projects.update(caller, str(project_id), **body.changes())
        return ProjectChangeOut.of_change(change)

    @api.post("/{project_id}/status", name="change_project_status", response_model=ProjectFactsOut)
    async def change_project_status(
        project_id: uuid.UUID, body: StatusIn, caller: CurrentCaller, svc: Service
    ) -> ProjectFactsOut:
        """open → in_progress → completed | cancelled; open → cancelled (owner, staff member)."""
        facts = await svc.projects.change_status(caller, str(project_id), body.status)
        return ProjectFactsOut.of(facts)

    @api.post(
        "/{project_id}/members",
        name="add_project_member",
        status_code=status.HTTP_201_CREATED,
        response_model=ProjectFactsOut,
    )
    async def add_project_member(
        project_id: uuid.UUID, body: MemberIn, caller: CurrentCaller, svc: Service
    ) -> ProjectFactsOut:
        """Add a creator or staff member known from identity with that role (the owner)."""
        facts = await svc.projects.add_member(
            caller, str(project_id), user_id=str(body.user_id), role=body.role
        )
        return ProjectFactsOut.of(facts)

    @api.delete(
        "/{project_id}/members/{user_id}",
        name="remove_project_member",
        response_model=ProjectFactsOut,
    )
    async def remove_project_member(
        project_id: uuid.UUID, user_id: uuid.UUID, caller: CurrentCaller, svc: Service
    ) -> ProjectFactsOut:
        """Remove a member (the owner)."""
        facts = await svc.projects.remove_member(caller, str(project_id), str(user_id))
        return ProjectFactsOut.of(facts)

    return api

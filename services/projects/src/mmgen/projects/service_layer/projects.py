"""Project use cases: create, read, list mine, correct, change status, manage members.

Every change is an event appended to the project's stream (optimistic concurrency, retried on
a conflict) and projected at once. Writes answer with the project's facts, never its texts:
only `get` returns the requirements, and it records the read.

Refusals answered 404 (the project's gate) and 422 (disclosures) are recorded by the use
cases; a 403 (creating a project without being a client) is recorded by the platform, which
hands every 401/403 to the app's denial recorder, so it is not recorded twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.ids import new_event_id
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.personal import PersonalReader
from mmgen.projects.adapters.ports import KnownUsers, ProjectRow, ProjectsReadModel
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.access import Operation, Relation, decide, may_create_project
from mmgen.projects.domain.errors import (
    MemberUserUnknownError,
    ProjectCreationNotAllowedError,
    ProjectNotFoundError,
)
from mmgen.projects.domain.events import BudgetBand, MemberRole, ProjectStatus
from mmgen.projects.domain.model import UNSET, Project
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.service_layer.changes import change_project
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.paging import before_id
from mmgen.projects.service_layer.views import (
    Page,
    ProjectChange,
    ProjectFacts,
    ProjectSummary,
    ProjectView,
    Read,
)

_RELATIONS = {
    "owner": Relation.owner,
    "creator": Relation.member_creator,
    "staff": Relation.member_staff,
}


def _plain(value: Any) -> Any:
    return None if is_erased(value) else value


class ProjectUseCases:
    def __init__(
        self,
        repo: EventSourcedRepository,
        gate: AccessGate,
        projects: ProjectsReadModel,
        projector: ProjectsProjector,
        known_users: KnownUsers,
        *,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.repo = repo
        self.gate = gate
        self.projects = projects
        self.projector = projector
        self.known_users = known_users
        self.reader = PersonalReader(repo.mapper, repo.store)
        self.new_id = new_id

    # --- create and read ------------------------------------------------------------------

    async def create(
        self,
        caller: Caller,
        *,
        title: str,
        requirements: str,
        budget_band: BudgetBand | None = None,
        deadline: date | None = None,
    ) -> ProjectView:
        if not may_create_project(caller.role):
            # A 403: the platform hands every 401/403 to the app's denial recorder itself.
            raise ProjectCreationNotAllowedError(str(caller.role))
        project = Project.create(
            self.new_id(),
            owner_id=caller.actor_id,
            title=title,
            requirements=requirements,
            budget_band=budget_band,
            deadline=deadline,
            actor=caller.actor(),
            purpose=str(caller.purpose) if caller.purpose else None,
        )
        project.stored(await self.repo.save(project))
        await self.projector.project_state(project)
        return ProjectView(ProjectFacts.of(project), title, requirements)

    async def get(self, caller: Caller, project_id: str) -> Read[ProjectView]:
        """The project with its requirements; the read is recorded."""
        admitted = await self.gate.enter(caller, project_id, Operation.read_project)
        project = await self.repo.get(Project, project_id)
        if project is None or not project.created:
            raise ProjectNotFoundError()
        view = ProjectView(
            ProjectFacts.of(project), _plain(project.title), _plain(project.requirements)
        )
        access = await self.gate.record_read(
            caller,
            admitted,
            resource_type="project",
            resource_id=project_id,
            categories=("project",),
            fields=("title", "requirements"),
            subject_ids=[project.owner_id],
            records=1,
        )
        return Read(view, access)

    async def list_mine(
        self, caller: Caller, *, limit: int, position: dict[str, Any] | None = None
    ) -> Read[Page[ProjectSummary]]:
        """The caller's projects (owned or joined), newest first, those the policy lets them
        read under their role and declared purpose; the titles shown are a recorded read."""
        below = before_id(position)
        relations = await self.projects.relations_of(caller.actor_id)
        visible = sorted(
            (
                pid
                for pid, relation in relations.items()
                if (below is None or pid < below)
                and decide(
                    caller.role, _RELATIONS[relation], caller.purpose, Operation.read_project
                ).allowed
            ),
            reverse=True,
        )
        rows = await self.projects.many(visible[:limit])
        items = [await self._summary(row, relations[row.project_id]) for row in rows]
        more = len(visible) > limit and bool(rows)
        page = Page(items, {"before": rows[-1].project_id} if more else None)
        access = await self.gate.record_list_read(
            caller,
            resource_type="project_list",
            categories=("project",),
            fields=("title",),
            subject_ids=[row.owner_id for row in rows],
            records=len(items),
        )
        return Read(page, access)

    async def _summary(self, row: ProjectRow, relation: str) -> ProjectSummary:
        title: str | None = None
        if row.title_ref is not None and not row.anonymized:
            ref = row.title_ref
            texts = await self.reader.open(
                event_type=ref.event_type,
                schema_version=ref.schema_version,
                event_id=ref.event_id,
                pii=ref.pii,
            )
            title = _plain(texts.title)
        return ProjectSummary(
            project_id=row.project_id,
            title=title,
            status=row.status,
            budget_band=row.budget_band,
            deadline=row.deadline,
            created_at=row.created_at,
            updated_at=row.updated_at,
            relation=relation,
            anonymized=row.anonymized or (row.title_ref is not None and title is None),
        )

    # --- changes --------------------------------------------------------------------------

    async def update(
        self,
        caller: Caller,
        project_id: str,
        *,
        title: Any = UNSET,
        requirements: Any = UNSET,
        budget_band: Any = UNSET,
        deadline: Any = UNSET,
    ) -> ProjectChange:
        """Correct title, requirements, budget band or deadline (owner only)."""
        admitted = await self.gate.enter(caller, project_id, Operation.update_project)
        changed: list[str] = []

        def decide_update(project: Project) -> None:
            changed[:] = project.update(
                actor=caller.actor(),
                title=title,
                requirements=requirements,
                budget_band=budget_band,
                deadline=deadline,
                purpose=str(admitted.purpose),
            )

        project = await change_project(self.repo, self.projector, project_id, decide_update)
        return ProjectChange(ProjectFacts.of(project), changed)

    async def change_status(
        self, caller: Caller, project_id: str, status: ProjectStatus
    ) -> ProjectFacts:
        """Move the project along its status rules (owner, or a staff member)."""
        admitted = await self.gate.enter(caller, project_id, Operation.change_status)
        project = await change_project(
            self.repo,
            self.projector,
            project_id,
            lambda p: p.change_status(status, actor=caller.actor(), purpose=str(admitted.purpose)),
        )
        return ProjectFacts.of(project)

    async def add_member(
        self, caller: Caller, project_id: str, *, user_id: str, role: MemberRole
    ) -> ProjectFacts:
        """Add a creator or staff member (owner only); the user must exist with that role,
        as identity's events tell."""
        admitted = await self.gate.enter(caller, project_id, Operation.manage_members)
        user = await self.known_users.get(user_id)
        if user is None or not user.active or user.role != role:
            raise MemberUserUnknownError(role)
        project = await change_project(
            self.repo,
            self.projector,
            project_id,
            lambda p: p.add_member(
                user_id, role, actor=caller.actor(), purpose=str(admitted.purpose)
            ),
        )
        return ProjectFacts.of(project)

    async def remove_member(self, caller: Caller, project_id: str, user_id: str) -> ProjectFacts:
        admitted = await self.gate.enter(caller, project_id, Operation.manage_members)
        project = await change_project(
            self.repo,
            self.projector,
            project_id,
            lambda p: p.remove_member(user_id, actor=caller.actor(), purpose=str(admitted.purpose)),
        )
        return ProjectFacts.of(project)

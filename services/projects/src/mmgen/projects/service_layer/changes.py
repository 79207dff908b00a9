"""Changing a project: load, decide, append at the loaded version, project — retried on a
conflict, since another request may have appended to the same project meanwhile."""

from __future__ import annotations

from collections.abc import Callable

from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.errors import (
    ProjectAnonymizedError,
    ProjectConflictError,
    ProjectNotFoundError,
)
from mmgen.projects.domain.model import Project

CONFLICT_RETRIES = 8


async def change_project(
    repo: EventSourcedRepository,
    projector: ProjectsProjector,
    project_id: str,
    decide_on: Callable[[Project], None],
) -> Project:
    """Apply `decide_on` to the current project and store what it recorded."""
    for _ in range(CONFLICT_RETRIES):
        project = await repo.get(Project, project_id)
        if project is None or not project.created:
            raise ProjectNotFoundError()
        decide_on(project)
        try:
            stored = await repo.save(project)
        except ConcurrencyError:
            continue
        except OwnerErasedError:  # the project's key was shredded between load and append
            raise ProjectAnonymizedError() from None
        project.stored(stored)
        await projector.project_state(project)
        return project
    raise ProjectConflictError()

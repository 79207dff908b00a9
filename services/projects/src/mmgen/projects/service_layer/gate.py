"""The one door to a project: the access policy applied, refusals and reads handed to the log.

Every use case that touches a project enters through `AccessGate.enter` before reading or
writing anything of it. A refusal — the project does not exist, or the policy says no — is
recorded as a denial (route template, target project, reason) and answered as
`ProjectNotFoundError`, whatever the reason, so the answer never confirms what the caller may
not see. Reads are recorded with `record_read` once their result is known (which categories,
whose data, how many records).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mmgen.platform.auth.principal import ProcessingPurpose
from mmgen.projects.adapters.access_log import AccessLog, AccessRecord, DenialRecord
from mmgen.projects.adapters.ports import ProjectRow, ProjectsReadModel
from mmgen.projects.domain.access import IMPLIED_PURPOSE, Decision, Operation, Relation, decide
from mmgen.projects.domain.errors import ProjectNotFoundError
from mmgen.projects.service_layer.caller import Caller

PROJECT_NOT_FOUND = "project_not_found"
LIST_PROJECTS = "list_projects"


def relation_of(row: ProjectRow, user_id: str) -> Relation:
    """The caller's relation to the project as its records have it."""
    if row.owner_id == user_id:
        return Relation.owner
    role = row.members.get(user_id)
    if role == "creator":
        return Relation.member_creator
    if role == "staff":
        return Relation.member_staff
    return Relation.none


@dataclass(frozen=True)
class Admitted:
    """The caller was let in: the project's row, and the purpose to record their access under."""

    row: ProjectRow
    decision: Decision
    operation: Operation

    @property
    def purpose(self) -> ProcessingPurpose:
        assert self.decision.purpose is not None
        return self.decision.purpose


class AccessGate:
    def __init__(self, projects: ProjectsReadModel, log: AccessLog) -> None:
        self.projects = projects
        self.log = log

    async def enter(self, caller: Caller, project_id: str, operation: Operation) -> Admitted:
        """Admit the caller, or record the refusal and raise `ProjectNotFoundError`."""
        row = await self.projects.get(project_id)
        if row is None:
            await self.refuse(caller, project_id, operation, PROJECT_NOT_FOUND, status=404)
            raise ProjectNotFoundError()
        decision = decide(caller.role, relation_of(row, caller.actor_id), caller.purpose, operation)
        if not decision.allowed:
            await self.refuse(caller, project_id, operation, decision.reason, status=404)
            raise ProjectNotFoundError()
        return Admitted(row, decision, operation)

    async def refuse(
        self,
        caller: Caller,
        project_id: str | None,
        operation: str,
        reason: str,
        *,
        status: int,
    ) -> None:
        """Record a refusal (the caller raises the matching error)."""
        await self.log.record_denial(
            DenialRecord(
                actor_id=caller.actor_id,
                actor_role=str(caller.role),
                declared_purpose=str(caller.purpose) if caller.purpose else None,
                route=caller.route,
                operation=str(operation),
                project_id=project_id,
                reason=str(reason),
                status=status,
                method=caller.method,
            )
        )

    async def record_read(
        self,
        caller: Caller,
        admitted: Admitted,
        *,
        resource_type: str,
        resource_id: str,
        categories: tuple[str, ...],
        fields: tuple[str, ...],
        subject_ids: Iterable[str | None],
        records: int,
    ) -> AccessRecord:
        """Hand a successful read to the log; returns what was recorded."""
        return await self._record(
            caller,
            purpose=str(admitted.purpose),
            operation=str(admitted.operation),
            project_id=admitted.row.project_id,
            resource_type=resource_type,
            resource_id=resource_id,
            categories=categories,
            fields=fields,
            subject_ids=subject_ids,
            records=records,
        )

    async def record_list_read(
        self,
        caller: Caller,
        *,
        resource_type: str,
        categories: tuple[str, ...],
        fields: tuple[str, ...],
        subject_ids: Iterable[str | None],
        records: int,
    ) -> AccessRecord:
        """Hand a read across the caller's own projects to the log (each project in it was
        admitted by the policy for this caller)."""
        return await self._record(
            caller,
            purpose=str(caller.purpose or IMPLIED_PURPOSE),
            operation=LIST_PROJECTS,
            project_id=None,
            resource_type=resource_type,
            resource_id=caller.actor_id,
            categories=categories,
            fields=fields,
            subject_ids=subject_ids,
            records=records,
        )

    async def _record(
        self,
        caller: Caller,
        *,
        purpose: str,
        operation: str,
        project_id: str | None,
        resource_type: str,
        resource_id: str,
        categories: tuple[str, ...],
        fields: tuple[str, ...],
        subject_ids: Iterable[str | None],
        records: int,
    ) -> AccessRecord:
        record = AccessRecord(
            actor_id=caller.actor_id,
            actor_role=str(caller.role),
            purpose=purpose,
            route=caller.route,
            operation=operation,
            project_id=project_id,
            resource_type=resource_type,
            resource_id=resource_id,
            categories=categories,
            subject_ids=tuple(dict.fromkeys(s for s in subject_ids if s)),
            records=records,
            fields=fields,
        )
        await self.log.record_access(record)
        return record

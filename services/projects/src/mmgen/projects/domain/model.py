"""The `Project` aggregate: a client's project, its status, budget, deadline and members.

State is the fold of the project's stream. The title and requirements are `ERASED` once the
project's key was shredded (anonymisation): folding never fails, and `anonymized` says so.
The decisions (`update`, `change_status`, `add_member`, `remove_member`) enforce the rules
and record one event each; who may ask for them is the access policy's business.

Events of one project are keyed by the subject they concern: project facts by the owner,
a membership by the member (so the member's Art. 15 report shows it, and a member's
additions and removals stay in order on one partition).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mmgen.events.envelope import Actor, PiiBlob
from mmgen.events.erased import ERASED, is_erased
from mmgen.events.mapper import DomainEvent, NewEvent
from mmgen.events.registry import EventData
from mmgen.events.repository import Aggregate
from mmgen.projects.domain.errors import (
    MemberAlreadyAddedError,
    MemberNotFoundError,
    NothingToChangeError,
    OwnerCannotBeMemberError,
    ProjectAnonymizedError,
    ProjectClosedError,
    StatusTransitionError,
)
from mmgen.projects.domain.events import (
    BudgetBand,
    MemberAdded,
    MemberRemovalReason,
    MemberRemoved,
    MemberRole,
    ProjectCreated,
    ProjectStatus,
    ProjectStatusChanged,
    ProjectTexts,
    ProjectTextsCorrected,
    ProjectUpdated,
)

OPEN: ProjectStatus = "open"
IN_PROGRESS: ProjectStatus = "in_progress"
COMPLETED: ProjectStatus = "completed"
CANCELLED: ProjectStatus = "cancelled"

#: The status rules: where each status may go next.
TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({IN_PROGRESS, CANCELLED}),
    IN_PROGRESS: frozenset({COMPLETED, CANCELLED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}
CLOSED_STATUSES = frozenset({COMPLETED, CANCELLED})


def can_transition(current: str, requested: str) -> bool:
    return requested in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class PersonalRef:
    """Where a stored event's encrypted personal part is, so a read model can point at the
    current title without holding it in clear: decrypting needs the owner's key, so a
    shred makes the reference unreadable like the event itself."""

    event_id: str
    event_type: str
    schema_version: int
    pii: PiiBlob


class _Unset:
    """Marks a field a correction leaves alone (None means "clear it")."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


class Project(Aggregate):
    """One project; `id` (the stream id) is the project id."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.created = False
        self.owner_id = ""
        self.title: Any = ERASED
        self.requirements: Any = ERASED
        self.budget_band: BudgetBand | None = None
        self.deadline: date | None = None
        self.status: ProjectStatus = OPEN
        self.members: dict[str, MemberRole] = {}
        self.created_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.status_changed_at: datetime | None = None
        self.title_ref: PersonalRef | None = None

    # --- folding ----------------------------------------------------------------------------

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case ProjectCreated(owner_id=owner, budget_band=band, deadline=deadline):
                self.created = True
                self.owner_id, self.budget_band, self.deadline = owner, band, deadline
                self.title, self.requirements = personal.title, personal.requirements
            case ProjectUpdated(changed=changed):
                if "budget_band" in changed:
                    self.budget_band = data.budget_band
                if "deadline" in changed:
                    self.deadline = data.deadline
                if "title" in changed:
                    self.title = personal.title
                if "requirements" in changed:
                    self.requirements = personal.requirements
            case ProjectStatusChanged(to_status=status):
                self.status = status
            case MemberAdded(user_id=user, role=role):
                self.members[user] = role
            case MemberRemoved(user_id=user):
                self.members.pop(user, None)

    def apply(self, event: DomainEvent[Any]) -> None:
        super().apply(event)
        self._stamp(event.data, event.occurred_at)
        self._note_ref(event)

    def record(self, event: NewEvent[Any]) -> None:
        super().record(event)
        self._stamp(event.data, event.occurred_at)

    def stored(self, events: list[DomainEvent[Any]]) -> None:
        """After `save`: remember which stored event now carries the title."""
        for event in events:
            self._note_ref(event)

    def _stamp(self, data: EventData, at: datetime) -> None:
        if isinstance(data, ProjectCreated):
            self.created_at = self.updated_at = self.status_changed_at = at
        elif isinstance(data, ProjectUpdated):
            self.updated_at = at
        elif isinstance(data, ProjectStatusChanged):
            self.updated_at = self.status_changed_at = at

    def _note_ref(self, event: DomainEvent[Any]) -> None:
        data, pii = event.data, event.envelope.pii
        carries_title = isinstance(data, ProjectCreated) or (
            isinstance(data, ProjectUpdated) and "title" in data.changed
        )
        if carries_title and pii is not None:
            self.title_ref = PersonalRef(
                event.event_id, event.event_type, event.envelope.schema_version, pii
            )

    # --- facts ------------------------------------------------------------------------------

    @property
    def anonymized(self) -> bool:
        """The project's key was shredded: title and requirements are gone for good."""
        return self.created and is_erased(self.title)

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def role_of(self, user_id: str) -> MemberRole | None:
        return self.members.get(user_id)

    # --- decisions --------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        project_id: str,
        *,
        owner_id: str,
        title: str,
        requirements: str,
        budget_band: BudgetBand | None,
        deadline: date | None,
        actor: Actor,
        purpose: str | None = None,
    ) -> Project:
        project = cls(project_id)
        project.record(
            NewEvent(
                ProjectCreated(owner_id=owner_id, budget_band=budget_band, deadline=deadline),
                personal=ProjectTexts(title=title, requirements=requirements),
                subject_id=owner_id,
                actor=actor,
                purpose=purpose,
            )
        )
        return project

    def _writable(self) -> None:
        if self.anonymized:
            raise ProjectAnonymizedError()
        if self.closed:
            raise ProjectClosedError(self.status)

    def update(
        self,
        *,
        actor: Actor,
        title: Any = UNSET,
        requirements: Any = UNSET,
        budget_band: Any = UNSET,
        deadline: Any = UNSET,
        purpose: str | None = None,
    ) -> list[str]:
        """Correct some fields; returns the names changed (`NothingToChangeError` if none)."""
        self._writable()
        changed: list[Any] = []
        if title is not UNSET and title != self.title:
            changed.append("title")
        if requirements is not UNSET and requirements != self.requirements:
            changed.append("requirements")
        if budget_band is not UNSET and budget_band != self.budget_band:
            changed.append("budget_band")
        if deadline is not UNSET and deadline != self.deadline:
            changed.append("deadline")
        if not changed:
            raise NothingToChangeError()
        personal = None
        if "title" in changed or "requirements" in changed:
            personal = ProjectTextsCorrected(
                title=title if "title" in changed else None,
                requirements=requirements if "requirements" in changed else None,
            )
        self.record(
            NewEvent(
                ProjectUpdated(
                    changed=changed,
                    budget_band=self.budget_band if budget_band is UNSET else budget_band,
                    deadline=self.deadline if deadline is UNSET else deadline,
                ),
                personal=personal,
                subject_id=self.owner_id,
                actor=actor,
                purpose=purpose,
            )
        )
        return list(changed)

    def change_status(
        self, requested: ProjectStatus, *, actor: Actor, purpose: str | None = None
    ) -> None:
        if not can_transition(self.status, requested):
            raise StatusTransitionError(self.status, requested)
        self.record(
            NewEvent(
                ProjectStatusChanged(from_status=self.status, to_status=requested),
                subject_id=self.owner_id,
                actor=actor,
                purpose=purpose,
            )
        )

    def add_member(
        self, user_id: str, role: MemberRole, *, actor: Actor, purpose: str | None = None
    ) -> None:
        self._writable()
        if user_id == self.owner_id:
            raise OwnerCannotBeMemberError()
        if user_id in self.members:
            raise MemberAlreadyAddedError()
        self.record(
            NewEvent(
                MemberAdded(project_id=self.id, user_id=user_id, role=role),
                subject_id=user_id,
                actor=actor,
                purpose=purpose,
                resource_id=f"{self.id}:{user_id}",
            )
        )

    def remove_member(
        self,
        user_id: str,
        *,
        actor: Actor | None,
        reason: MemberRemovalReason = "removed",
        purpose: str | None = None,
        causation_id: str | None = None,
    ) -> None:
        """Members can leave a closed or anonymised project too (erasure must always work)."""
        role = self.members.get(user_id)
        if role is None:
            raise MemberNotFoundError()
        self.record(
            NewEvent(
                MemberRemoved(project_id=self.id, user_id=user_id, role=role, reason=reason),
                subject_id=user_id,
                actor=actor,
                purpose=purpose,
                resource_id=f"{self.id}:{user_id}",
                causation_id=causation_id,
            )
        )

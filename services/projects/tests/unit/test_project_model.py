"""The project aggregate's rules: status transitions, corrections, membership."""

from __future__ import annotations

import itertools
import uuid
from datetime import date

import pytest

from mmgen.events.envelope import Actor
from mmgen.projects.domain.errors import (
    MemberAlreadyAddedError,
    MemberNotFoundError,
    NothingToChangeError,
    OwnerCannotBeMemberError,
    ProjectClosedError,
    StatusTransitionError,
)
from mmgen.projects.domain.events import (
    MemberAdded,
    MemberRemoved,
    ProjectStatusChanged,
    ProjectUpdated,
)
from mmgen.projects.domain.model import Project

OWNER = Actor(id=str(uuid.uuid4()), role="client")
STATUSES = ["open", "in_progress", "completed", "cancelled"]
#: The issue's rules: open → in_progress → completed | cancelled; open → cancelled.
PERMITTED = {
    ("open", "in_progress"),
    ("open", "cancelled"),
    ("in_progress", "completed"),
    ("in_progress", "cancelled"),
}
PATH_TO = {
    "open": [],
    "in_progress": ["in_progress"],
    "completed": ["in_progress", "completed"],
    "cancelled": ["cancelled"],
}


def new_project() -> Project:
    return Project.create(
        str(uuid.uuid4()),
        owner_id=OWNER.id,
        title="Spring campaign",
        requirements="Three models, one day, studio light",
        budget_band="5k_20k",
        deadline=date(2027, 3, 1),
        actor=OWNER,
    )


def at_status(status: str) -> Project:
    project = new_project()
    for step in PATH_TO[status]:
        project.change_status(step, actor=OWNER)  # type: ignore[arg-type]
    return project


@pytest.mark.parametrize(("current", "requested"), list(itertools.product(STATUSES, STATUSES)))
def test_status_transitions(current: str, requested: str) -> None:
    project = at_status(current)
    if (current, requested) in PERMITTED:
        project.change_status(requested, actor=OWNER)  # type: ignore[arg-type]
        assert project.status == requested
        event = project.pending[-1]
        assert event.data == ProjectStatusChanged(from_status=current, to_status=requested)
        assert event.subject_id == OWNER.id
    else:
        pending = len(project.pending)
        with pytest.raises(StatusTransitionError):
            project.change_status(requested, actor=OWNER)  # type: ignore[arg-type]
        assert project.status == current
        assert len(project.pending) == pending


def test_a_new_project_is_open_with_its_texts_under_the_project_key() -> None:
    project = new_project()
    assert project.status == "open"
    assert project.title == "Spring campaign"
    (event,) = project.pending
    assert event.subject_id == OWNER.id
    assert event.personal is not None
    assert event.personal.requirements.startswith("Three models")


def test_update_records_only_what_changed() -> None:
    project = new_project()
    changed = project.update(actor=OWNER, title="Spring campaign", deadline=None)
    assert changed == ["deadline"]
    event = project.pending[-1]
    assert isinstance(event.data, ProjectUpdated)
    assert event.data.changed == ["deadline"]
    assert event.personal is None  # no personal field changed: no encrypted part
    assert project.deadline is None
    changed = project.update(actor=OWNER, requirements="Two models")
    assert changed == ["requirements"]
    assert project.pending[-1].personal.requirements == "Two models"
    assert project.pending[-1].personal.title is None


def test_update_that_changes_nothing_is_refused() -> None:
    project = new_project()
    with pytest.raises(NothingToChangeError):
        project.update(actor=OWNER, title="Spring campaign", budget_band="5k_20k")


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_closed_projects_no_longer_change(status: str) -> None:
    project = at_status(status)
    with pytest.raises(ProjectClosedError):
        project.update(actor=OWNER, title="Other")
    with pytest.raises(ProjectClosedError):
        project.add_member(str(uuid.uuid4()), "creator", actor=OWNER)


def test_members_join_once_and_leave_even_a_closed_project() -> None:
    project = new_project()
    member = str(uuid.uuid4())
    project.add_member(member, "creator", actor=OWNER)
    added = project.pending[-1]
    assert isinstance(added.data, MemberAdded)
    assert added.subject_id == member  # the member's Art. 15 report shows it
    assert added.resource_id == f"{project.id}:{member}"
    with pytest.raises(MemberAlreadyAddedError):
        project.add_member(member, "staff", actor=OWNER)
    with pytest.raises(OwnerCannotBeMemberError):
        project.add_member(OWNER.id, "creator", actor=OWNER)
    project.change_status("cancelled", actor=OWNER)
    project.remove_member(member, actor=None, reason="erased")
    removed = project.pending[-1]
    assert isinstance(removed.data, MemberRemoved)
    assert removed.data.reason == "erased"
    assert member not in project.members
    with pytest.raises(MemberNotFoundError):
        project.remove_member(member, actor=OWNER)

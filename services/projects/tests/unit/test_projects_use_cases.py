"""Project use cases over the in-memory kernel and fakes: what they store, answer and record."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from mmgen.projects.domain.errors import (
    CursorInvalidError,
    MemberUserUnknownError,
    ProjectCreationNotAllowedError,
    ProjectNotFoundError,
    StatusTransitionError,
)
from mmgen.projects.domain.events import MemberAdded, ProjectCreated
from mmgen.projects.testing import Wired, as_, caller, in_memory, known, make_team


@pytest.fixture
def wired() -> Wired:
    return in_memory()


async def test_a_client_creates_a_project_with_its_texts_under_the_project_key(
    wired: Wired,
) -> None:
    owner = caller("client")
    view = await wired.projects.create(
        owner, title="Launch", requirements="Two creators", deadline=date(2027, 1, 31)
    )
    assert view.facts.status == "open"
    assert view.title == "Launch"
    (envelope,) = await wired.kernel.store.load(view.facts.project_id)
    assert envelope.event_type == "projects.ProjectCreated"
    assert envelope.pii is not None
    assert envelope.pii.owner == f"project:{view.facts.project_id}"
    assert b"Two creators" not in envelope.pii.ciphertext
    assert envelope.subject_id == owner.actor_id
    assert envelope.data == ProjectCreated(
        owner_id=owner.actor_id, deadline=date(2027, 1, 31)
    ).model_dump(mode="json")


@pytest.mark.parametrize("role", ["creator", "staff", "compliance", "admin"])
async def test_only_clients_create_projects(wired: Wired, role: str) -> None:
    who = caller(role, purpose="support", route="/projects")
    with pytest.raises(ProjectCreationNotAllowedError):
        await wired.projects.create(who, title="t", requirements="r")
    # A 403: the platform records it (every 401/403 reaches the app's denial recorder).
    assert wired.access_log.denials == []
    assert await wired.kernel.store.last_seq() == 0


async def test_reading_a_project_is_recorded_with_category_purpose_and_subject(
    wired: Wired,
) -> None:
    team = await make_team(wired)
    read = await wired.projects.get(team.staff, team.project_id)
    assert read.value.requirements == "Three models, one studio day"
    assert [m.user_id for m in read.value.facts.members] == sorted(
        [team.creator.actor_id, team.staff.actor_id]
    )
    access = read.access
    assert access.categories == ("project",)
    assert access.purpose == "project_execution"
    assert access.subject_ids == (team.owner.actor_id,)
    assert (access.actor_id, access.project_id) == (team.staff.actor_id, team.project_id)
    assert wired.access_log.accesses == [access]


async def test_outsiders_get_not_found_and_a_denial_names_route_and_project(
    wired: Wired,
) -> None:
    team = await make_team(wired)
    stranger = caller("client", route="/projects/{project_id}")
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.get(stranger, team.project_id)
    missing = str(uuid.uuid4())
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.get(stranger, missing)
    first, second = wired.access_log.denials
    assert (first.project_id, first.reason, first.status) == (team.project_id, "not_member", 404)
    assert (second.project_id, second.reason) == (missing, "project_not_found")
    assert first.route == "/projects/{project_id}"
    assert wired.access_log.accesses == []


async def test_my_projects_newest_first_in_pages_and_only_those_the_policy_admits(
    wired: Wired,
) -> None:
    owner = await known(wired, caller("client"))
    staff = await known(wired, caller("staff"))
    ids = []
    for n in range(5):
        view = await wired.projects.create(owner, title=f"P{n}", requirements="r")
        ids.append(view.facts.project_id)
        await wired.projects.add_member(owner, ids[-1], user_id=staff.actor_id, role="staff")
    first = await wired.projects.list_mine(owner, limit=2)
    assert [p.title for p in first.value.items] == ["P4", "P3"]
    assert first.value.next_position == {"before": ids[3]}
    second = await wired.projects.list_mine(owner, limit=2, position=first.value.next_position)
    third = await wired.projects.list_mine(owner, limit=2, position=second.value.next_position)
    assert [p.title for p in second.value.items + third.value.items] == ["P2", "P1", "P0"]
    assert third.value.next_position is None
    assert first.access.categories == ("project",)
    assert first.access.records == 2
    # Staff see their projects only while declaring a purpose they may work under.
    assert (await wired.projects.list_mine(staff, limit=10)).value.items == []
    working = as_(staff, purpose="support")
    listed = await wired.projects.list_mine(working, limit=10)
    assert [p.relation for p in listed.value.items] == ["staff"] * 5
    with pytest.raises(CursorInvalidError):
        await wired.projects.list_mine(owner, limit=2, position={"before": 3})


async def test_corrections_by_the_owner(wired: Wired) -> None:
    team = await make_team(wired)
    change = await wired.projects.update(
        team.owner, team.project_id, title="Summer campaign", budget_band=None
    )
    assert change.changed == ["title", "budget_band"]
    assert change.facts.budget_band is None
    read = await wired.projects.get(team.owner, team.project_id)
    assert read.value.title == "Summer campaign"
    (summary,) = (await wired.projects.list_mine(team.owner, limit=5)).value.items
    assert summary.title == "Summer campaign"
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.update(team.creator, team.project_id, title="Mine now")


async def test_status_by_owner_or_staff_member_following_the_rules(wired: Wired) -> None:
    team = await make_team(wired)
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.change_status(team.creator, team.project_id, "in_progress")
    facts = await wired.projects.change_status(team.staff, team.project_id, "in_progress")
    assert facts.status == "in_progress"
    with pytest.raises(StatusTransitionError):
        await wired.projects.change_status(team.owner, team.project_id, "open")
    facts = await wired.projects.change_status(team.owner, team.project_id, "completed")
    assert facts.status == "completed"
    row = await wired.projects_rm.get(team.project_id)
    assert row is not None and row.status == "completed"


async def test_members_must_be_known_with_that_role_and_active(wired: Wired) -> None:
    team = await make_team(wired)
    creator = await known(wired, caller("creator"))
    with pytest.raises(MemberUserUnknownError):
        await wired.projects.add_member(
            team.owner, team.project_id, user_id=creator.actor_id, role="staff"
        )
    with pytest.raises(MemberUserUnknownError):
        await wired.projects.add_member(
            team.owner, team.project_id, user_id=str(uuid.uuid4()), role="creator"
        )
    await wired.known_users.close(creator.actor_id)
    with pytest.raises(MemberUserUnknownError):
        await wired.projects.add_member(
            team.owner, team.project_id, user_id=creator.actor_id, role="creator"
        )


async def test_a_removed_member_loses_access(wired: Wired) -> None:
    team = await make_team(wired)
    await wired.projects.get(team.creator, team.project_id)
    facts = await wired.projects.remove_member(team.owner, team.project_id, team.creator.actor_id)
    assert team.creator.actor_id not in [m.user_id for m in facts.members]
    with pytest.raises(ProjectNotFoundError):
        await wired.projects.get(team.creator, team.project_id)
    added = [
        e
        for e in await wired.kernel.repository.load(team.project_id)
        if isinstance(e.data, MemberAdded)
    ]
    assert {e.subject_id for e in added} == {team.creator.actor_id, team.staff.actor_id}

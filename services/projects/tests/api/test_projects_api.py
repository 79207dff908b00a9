"""Projects, members, status and messages through HTTP: what a gateway would do, answered
with problem+json for every mistake; known users learnt from identity's events on Kafka;
tokens of accounts identity closed refused at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.testing import assert_problem, eventually, publish
from services.projects.tests.projects_kit import Api

pytestmark = pytest.mark.asyncio(loop_scope="module")


def identity_event(event_type: str, user_id: str, version: int, **data: Any) -> Envelope:
    """One of identity's events as identity publishes it (public data only)."""
    return Envelope(
        event_type=event_type,
        schema_version=1,
        producer="identity",
        producer_seq=version,
        stream_id=f"user-{user_id}",
        stream_version=version,
        subject_id=user_id,
        actor=Actor(id=user_id, role="client"),
        action="create" if version == 1 else "delete",
        resource=Resource(type="user", id=user_id),
        data=data,
    )


async def test_a_project_is_created_read_corrected_and_listed(api: Api) -> None:
    team = await api.team(title="Autumn look-book", requirements="Four looks, one day")
    read = await api.client.get(f"/projects/{team.project_id}", headers=team.creator.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["title"], body["requirements"]) == ("Autumn look-book", "Four looks, one day")
    assert (body["status"], body["budget"], body["owner_id"]) == (
        "open",
        "5k_20k",
        team.owner.user_id,
    )
    assert {m["user_id"] for m in body["members"]} == {team.creator.user_id, team.staff.user_id}

    patched = await api.client.patch(
        f"/projects/{team.project_id}",
        headers=team.owner.headers,
        json={"requirements": "Five looks", "budget": None},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["changed"] == ["requirements", "budget_band"]
    assert patched.json()["budget"] is None
    same = await api.client.patch(
        f"/projects/{team.project_id}", headers=team.owner.headers, json={"budget": None}
    )
    assert_problem(same, 422, "nothing-to-change")

    mine = await api.client.get("/projects", headers=team.creator.headers)
    [line] = [p for p in mine.json()["items"] if p["project_id"] == team.project_id]
    assert (line["title"], line["relation"]) == ("Autumn look-book", "creator")


async def test_only_clients_create_projects_and_the_refusal_is_recorded(api: Api) -> None:
    creator = api.person("creator")
    refused = await api.client.post(
        "/projects", headers=creator.headers, json={"title": "t", "requirements": "r"}
    )
    assert_problem(refused, 403, "project-creation-not-allowed")
    [denial] = await api.denials_of(creator.user_id)
    assert denial["data"]["route"] == "/projects"
    unknown_field = await api.client.post(
        "/projects",
        headers=api.person("client").headers,
        json={"title": "t", "requirements": "r", "owner_id": creator.user_id},
    )
    assert_problem(unknown_field, 422, "validation-failed")
    anonymous = await api.client.get("/projects")
    assert_problem(anonymous, 401)


async def test_status_moves_along_its_rules_and_anything_else_is_409(api: Api) -> None:
    team = await api.team()
    url = f"/projects/{team.project_id}/status"
    backwards = await api.client.post(url, headers=team.owner.headers, json={"status": "completed"})
    problem = assert_problem(backwards, 409, "status-transition-not-allowed")
    assert (problem["current_status"], problem["requested_status"]) == ("open", "completed")
    started = await api.client.post(url, headers=team.staff.headers, json={"status": "in_progress"})
    assert started.json()["status"] == "in_progress"
    done = await api.client.post(url, headers=team.owner.headers, json={"status": "completed"})
    assert done.json()["status"] == "completed"
    again = await api.client.post(url, headers=team.owner.headers, json={"status": "cancelled"})
    assert_problem(again, 409, "status-transition-not-allowed")
    closed = await api.client.post(
        f"/projects/{team.project_id}/messages", headers=team.creator.headers, json={"text": "hi"}
    )
    assert_problem(closed, 409, "project-closed")
    nonsense = await api.client.post(url, headers=team.owner.headers, json={"status": "paused"})
    assert_problem(nonsense, 422, "validation-failed")


async def test_members_must_be_known_with_their_role(api: Api) -> None:
    team = await api.team()
    url = f"/projects/{team.project_id}/members"
    stranger = api.person("creator")  # never registered
    unknown = await api.client.post(
        url, headers=team.owner.headers, json={"user_id": stranger.user_id, "role": "creator"}
    )
    assert_problem(unknown, 422, "member-user-unknown")
    staff = await api.known("staff")
    wrong_role = await api.client.post(
        url, headers=team.owner.headers, json={"user_id": staff.user_id, "role": "creator"}
    )
    assert_problem(wrong_role, 422, "member-user-unknown")
    twice = await api.client.post(
        url, headers=team.owner.headers, json={"user_id": team.creator.user_id, "role": "creator"}
    )
    assert_problem(twice, 409, "member-exists")
    owner = await api.client.post(
        url, headers=team.owner.headers, json={"user_id": team.owner.user_id, "role": "creator"}
    )
    assert_problem(owner, 422)

    removed = await api.client.delete(f"{url}/{team.creator.user_id}", headers=team.owner.headers)
    assert removed.status_code == 200, removed.text
    gone = await api.client.get(f"/projects/{team.project_id}", headers=team.creator.headers)
    assert_problem(gone, 404, "project-not-found")  # access ends at once
    [membership] = await api.events(
        event_type="projects.MemberRemoved", subject_id=team.creator.user_id
    )
    assert membership["data"]["project_id"] == team.project_id
    not_member = await api.client.delete(f"{url}/{uuid.uuid4()}", headers=team.owner.headers)
    assert_problem(not_member, 404, "member-not-found")


async def test_messages_page_newest_first_with_cursors_and_each_page_is_recorded(
    api: Api,
) -> None:
    team = await api.team()
    texts = [f"message {i}" for i in range(7)]
    for i, text in enumerate(texts):
        await api.post_message(team.creator if i % 2 else team.owner, team.project_id, text)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await api.client.get(
            f"/projects/{team.project_id}/messages",
            params=params,
            headers=team.staff.declaring("support", api.tokens).headers,
        )
        assert page.status_code == 200, page.text
        seen += [m["text"] for m in page.json()["items"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == texts[::-1]
    accesses = [
        a
        for a in await api.accesses_of(team.staff.user_id)
        if a["data"]["route"] == "/projects/{project_id}/messages"
    ]
    assert len(accesses) == pages == 3
    assert {a["purpose"] for a in accesses} == {"support"}
    assert all(a["categories"] == ["communication"] for a in accesses)
    assert [a["data"]["records"] for a in accesses] == [3, 3, 1]
    bad = await api.client.get(
        f"/projects/{team.project_id}/messages",
        params={"cursor": "eyJiZWZvcmUiOiAxMDB9"},  # {"before": 100}: not one we issued
        headers=team.owner.headers,
    )
    assert_problem(bad, 400, "invalid-cursor")
    too_many = await api.client.get(
        f"/projects/{team.project_id}/messages",
        params={"limit": 10_000},
        headers=team.owner.headers,
    )
    assert_problem(too_many, 422, "validation-failed")


async def test_users_known_from_identitys_events_and_closed_accounts_refused(
    api: Api, settings: ProjectsSettings
) -> None:
    team = await api.team()
    newcomer = api.person("creator")
    topic = settings.topic("identity.events")
    await publish(
        settings.kafka_bootstrap,
        topic,
        identity_event("identity.UserRegistered", newcomer.user_id, 1, role="creator"),
    )

    async def add() -> int:
        response = await api.client.post(
            f"/projects/{team.project_id}/members",
            headers=team.owner.headers,
            json={"user_id": newcomer.user_id, "role": "creator"},
        )
        return response.status_code

    assert await eventually(add, until=lambda status: status == 201, timeout=30) == 201
    read = await api.client.get(f"/projects/{team.project_id}", headers=newcomer.headers)
    assert read.status_code == 200, read.text

    await publish(
        settings.kafka_bootstrap,
        topic,
        identity_event("identity.AccountClosed", newcomer.user_id, 2),
    )

    async def status_of_read() -> int:
        response = await api.client.get(f"/projects/{team.project_id}", headers=newcomer.headers)
        return response.status_code

    assert await eventually(status_of_read, until=lambda s: s == 401, timeout=30) == 401
    closed = await api.service.known_users.get(newcomer.user_id)
    assert closed is not None and closed.status == "closed"


async def test_readiness_names_every_part(api: Api) -> None:
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {"database", "broker", "relay", "inbox", "projections"} <= set(checks)
    assert "projects-read-models lag" in checks["projections"]

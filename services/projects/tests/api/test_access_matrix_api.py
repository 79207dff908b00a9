"""The access matrix of issue 11 over every project route, through HTTP: only the permitted
cells succeed; every refused cell answers as if the project did not exist (404) — or 403 when
a staff, compliance or admin caller declared no purpose at all — and leaves exactly one
`projects.AccessDenied` in the service's event store, naming the caller, the route template
and the project, and nothing else is written.

| caller | read | write messages/files | status | edit, members, disclosures |
|---|---|---|---|---|
| owner (client) | ✔ | ✔ | ✔ | ✔ |
| member creator | ✔ | ✔ | ✘ | ✘ |
| member staff + project_execution or support | ✔ | ✔ | ✔ | ✘ |
| compliance + legal_compliance | ✔ | ✘ | ✘ | ✘ |
| anyone else | ✘ | ✘ | ✘ | ✘ |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mmgen.projects.testing import SAMPLES
from mmgen.runtime.testing import assert_problem
from services.projects.tests.projects_kit import Api, Person, Team

pytestmark = pytest.mark.asyncio(loop_scope="module")

READ, WRITE, STATUS, MANAGE = "read", "write", "status", "manage"
EVERYTHING = frozenset({READ, WRITE, STATUS, MANAGE})


@dataclass(frozen=True)
class Who:
    name: str
    make: Callable[[Api, Team], Person]
    may: frozenset[str]
    #: The refusal's status: 404 from the project's gate, 403 when no purpose was declared
    #: or one no project route accepts.
    refused: int = 404


WHO = [
    Who("owner", lambda a, t: t.owner, EVERYTHING),
    Who("member creator", lambda a, t: t.creator, frozenset({READ, WRITE})),
    Who("member staff, project_execution", lambda a, t: t.staff,
        frozenset({READ, WRITE, STATUS})),
    Who("member staff, support", lambda a, t: t.staff.declaring("support", a.tokens),
        frozenset({READ, WRITE, STATUS})),
    Who("member staff, no purpose", lambda a, t: t.staff.declaring(None, a.tokens),
        frozenset(), refused=403),
    Who("member staff, legal_compliance",
        lambda a, t: t.staff.declaring("legal_compliance", a.tokens), frozenset()),
    Who("compliance, legal_compliance", lambda a, t: a.person("compliance", "legal_compliance"),
        frozenset({READ})),
    Who("compliance, support", lambda a, t: a.person("compliance", "support"), frozenset()),
    Who("compliance, no purpose", lambda a, t: a.person("compliance"), frozenset(), refused=403),
    Who("another client", lambda a, t: a.person("client"), frozenset()),
    Who("another creator", lambda a, t: a.person("creator"), frozenset()),
    Who("another staff, project_execution", lambda a, t: a.person("staff", "project_execution"),
        frozenset()),
    Who("admin, security", lambda a, t: a.person("admin", "security"), frozenset(), refused=403),
    Who("the member creator with a staff token",
        lambda a, t: a.person("staff", "support", user_id=t.creator.user_id), frozenset()),
    Who("a service token", lambda a, t: a.person("service"), frozenset()),
]  # fmt: skip

Call = Callable[[Api, Team, Person], Awaitable[httpx.Response]]


def _upload(a: Api, t: Team, p: Person) -> Awaitable[httpx.Response]:
    return a.upload(
        p, t.project_id, SAMPLES["image/gif"], filename="a.gif", content_type="image/gif"
    )


ROUTES: list[tuple[str, str, str, int, Call]] = [
    (READ, "GET", "/projects/{project_id}", 200,
     lambda a, t, p: a.client.get(f"/projects/{t.project_id}", headers=p.headers)),
    (READ, "GET", "/projects/{project_id}/messages", 200,
     lambda a, t, p: a.client.get(f"/projects/{t.project_id}/messages", headers=p.headers)),
    (READ, "GET", "/projects/{project_id}/files", 200,
     lambda a, t, p: a.client.get(f"/projects/{t.project_id}/files", headers=p.headers)),
    (READ, "GET", "/projects/{project_id}/files/{file_id}", 200,
     lambda a, t, p: a.client.get(f"/projects/{t.project_id}/files/{t.file_id}",
                                  headers=p.headers)),
    (WRITE, "POST", "/projects/{project_id}/messages", 201,
     lambda a, t, p: a.client.post(f"/projects/{t.project_id}/messages", headers=p.headers,
                                   json={"text": "on my way"})),
    (WRITE, "POST", "/projects/{project_id}/files", 201, _upload),
    (STATUS, "POST", "/projects/{project_id}/status", 200,
     lambda a, t, p: a.client.post(f"/projects/{t.project_id}/status", headers=p.headers,
                                   json={"status": "in_progress"})),
    (MANAGE, "PATCH", "/projects/{project_id}", 200,
     lambda a, t, p: a.client.patch(f"/projects/{t.project_id}", headers=p.headers,
                                    json={"title": "Summer campaign"})),
    (MANAGE, "POST", "/projects/{project_id}/members", 201,
     lambda a, t, p: a.client.post(f"/projects/{t.project_id}/members", headers=p.headers,
                                   json={"user_id": t.extra["newcomer"], "role": "creator"})),
    (MANAGE, "DELETE", "/projects/{project_id}/members/{user_id}", 200,
     lambda a, t, p: a.client.delete(f"/projects/{t.project_id}/members/{t.extra['leaving']}",
                                     headers=p.headers)),
    (MANAGE, "POST", "/projects/{project_id}/disclosures", 201,
     lambda a, t, p: a.client.post(
         f"/projects/{t.project_id}/disclosures", headers=p.headers,
         json={"recipient": {"type": "payment_provider", "name": "PayCo"},
               "purpose": "payment_processing", "legal_basis": "contract",
               "categories": ["contact"], "subject_ids": [t.owner.user_id]})),
]  # fmt: skip

#: The categories each read names in its access event.
READ_CATEGORIES = {
    "/projects/{project_id}": ["project"],
    "/projects/{project_id}/messages": ["communication"],
    "/projects/{project_id}/files": ["files"],
    "/projects/{project_id}/files/{file_id}": ["files"],
}

CELLS = [(who, route) for who in WHO for route in ROUTES]


async def _fixture(api: Api) -> Team:
    team = await api.team()
    uploaded = await api.upload(team.owner, team.project_id)
    assert uploaded.status_code == 201, uploaded.text
    team.file_id = uploaded.json()["file_id"]
    await api.post_message(team.creator, team.project_id, "first!")
    newcomer = await api.known("creator")
    leaving = await api.known("creator")
    added = await api.client.post(
        f"/projects/{team.project_id}/members",
        headers=team.owner.headers,
        json={"user_id": leaving.user_id, "role": "creator"},
    )
    assert added.status_code == 201, added.text
    team.extra.update(newcomer=newcomer.user_id, leaving=leaving.user_id)
    return team


@pytest.fixture(scope="module")
def teams() -> dict[str, Team]:
    """One team per caller row, made on the row's first cell. A row's cells leave each other
    working in any order: each change (status, title, a member added or removed, a
    disclosure, a message, a file) is made at most once per row and none undoes another."""
    return {}


async def _team_of(api: Api, teams: dict[str, Team], who: Who) -> Team:
    if who.name not in teams:
        teams[who.name] = await _fixture(api)
    return teams[who.name]


async def _last_seq(api: Api) -> int:
    return int(await api.service.kernel.store.last_seq())


@pytest.mark.parametrize(
    ("who", "route"), CELLS, ids=[f"{w.name} / {r[1]} {r[2]}" for w, r in CELLS]
)
async def test_the_matrix(
    api: Api, teams: dict[str, Team], who: Who, route: tuple[str, str, str, int, Call]
) -> None:
    kind, method, template, ok_status, call = route
    team = await _team_of(api, teams, who)
    caller = who.make(api, team)
    before = await _last_seq(api)
    response: Any = await call(api, team, caller)
    appended = await api.events(producer_seq={"$gt": before})

    if kind in who.may:
        assert response.status_code == ok_status, response.text
        assert await api.denials_of(caller.user_id) == []
        if kind == READ:
            [access] = [e for e in appended if e["event_type"] == "projects.DataAccessed"]
            assert access["actor"] == {"id": caller.user_id, "role": caller.role}
            assert access["data"]["route"] == template
            assert access["categories"] == READ_CATEGORIES[template]
            assert access["purpose"] in ("project_execution", "support", "legal_compliance")
        return

    assert_problem(response, who.refused)
    if who.refused == 404:
        assert response.json()["type"] == "urn:mmgen:problem:project-not-found"
    # exactly one event: the refusal, naming caller, route template and project
    assert [e["event_type"] for e in appended] == ["projects.AccessDenied"], appended
    [denial] = appended
    assert denial["actor"] == {"id": caller.user_id, "role": caller.role}
    assert denial["action"] == "deny"
    assert denial["data"]["route"] == template
    assert denial["data"]["method"] == method
    assert denial["data"]["status"] == who.refused
    assert (denial["data"]["target_type"], denial["data"]["target_id"]) == (
        "project",
        team.project_id,
    )
    assert team.project_id not in denial["data"]["route"]  # a template, never the raw path


async def test_my_projects_lists_a_project_only_to_those_who_may_read_it(api: Api) -> None:
    team = await _fixture(api)
    for who in WHO:
        caller = who.make(api, team)
        response = await api.client.get("/projects", headers=caller.headers)
        if who.refused == 403:
            assert_problem(response, 403)
            continue
        assert response.status_code == 200, response.text
        listed = [p["project_id"] for p in response.json()["items"]]
        member = caller.user_id in (team.owner.user_id, team.creator.user_id, team.staff.user_id)
        visible = READ in who.may and member
        assert (team.project_id in listed) is visible, who.name

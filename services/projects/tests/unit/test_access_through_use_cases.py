"""The access matrix through every use case that touches a project: only the permitted cells
succeed; every other one answers "not found" and leaves a denial naming the caller, the route
and the project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mmgen.projects.domain.errors import ProjectNotFoundError
from mmgen.projects.domain.events import Recipient
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.testing import (
    SAMPLES,
    Team,
    Wired,
    as_,
    caller,
    collect,
    in_memory,
    known,
    make_team,
    pieces,
)

READ, WRITE, STATUS, MANAGE = "read", "write", "status", "manage"
ALL = {READ, WRITE, STATUS, MANAGE}


@dataclass(frozen=True)
class Who:
    name: str
    make: Callable[[Team], Caller]
    may: frozenset[str]


WHO = [
    Who("owner", lambda t: t.owner, frozenset(ALL)),
    Who("member creator", lambda t: t.creator, frozenset({READ, WRITE})),
    Who("member staff, project_execution", lambda t: t.staff, frozenset({READ, WRITE, STATUS})),
    Who(
        "member staff, support",
        lambda t: as_(t.staff, purpose="support"),
        frozenset({READ, WRITE, STATUS}),
    ),
    Who("member staff, no purpose", lambda t: as_(t.staff), frozenset()),
    Who("member staff, legal_compliance", lambda t: as_(t.staff, purpose="legal_compliance"),
        frozenset()),
    Who("compliance, legal_compliance", lambda t: caller("compliance", purpose="legal_compliance"),
        frozenset({READ})),
    Who("compliance, support", lambda t: caller("compliance", purpose="support"), frozenset()),
    Who("another client", lambda t: caller("client"), frozenset()),
    Who("another creator", lambda t: caller("creator"), frozenset()),
    Who("another staff, support", lambda t: caller("staff", purpose="support"), frozenset()),
    Who("admin, security", lambda t: caller("admin", purpose="security"), frozenset()),
    Who("member creator with a staff token", lambda t: Caller(
        t.creator.actor_id, caller("staff").role, caller("staff", purpose="support").purpose,
        t.creator.route), frozenset()),
]  # fmt: skip


@dataclass(frozen=True)
class Fixture:
    wired: Wired
    team: Team
    file_id: str
    newcomer: str
    leaving: str


Op = Callable[[Fixture, Caller], Awaitable[Any]]


async def _download(f: Fixture, c: Caller) -> Any:
    read = await f.wired.files.download(c, f.team.project_id, f.file_id)
    return await collect(read.value.content)


OPS: list[tuple[str, str, str, Op]] = [
    ("get project", READ, "/projects/{project_id}",
     lambda f, c: f.wired.projects.get(c, f.team.project_id)),
    ("list messages", READ, "/projects/{project_id}/messages",
     lambda f, c: f.wired.messages.list(c, f.team.project_id, limit=10)),
    ("list files", READ, "/projects/{project_id}/files",
     lambda f, c: f.wired.files.list(c, f.team.project_id, limit=10)),
    ("download file", READ, "/projects/{project_id}/files/{file_id}", _download),
    ("post message", WRITE, "/projects/{project_id}/messages",
     lambda f, c: f.wired.messages.post(c, f.team.project_id, "hi")),
    ("upload file", WRITE, "/projects/{project_id}/files",
     lambda f, c: f.wired.files.upload(c, f.team.project_id, filename="a.gif",
                                       content_type="image/gif",
                                       body=pieces(SAMPLES["image/gif"]))),
    ("change status", STATUS, "/projects/{project_id}/status",
     lambda f, c: f.wired.projects.change_status(c, f.team.project_id, "in_progress")),
    ("correct project", MANAGE, "/projects/{project_id}",
     lambda f, c: f.wired.projects.update(c, f.team.project_id, title="New title")),
    ("add member", MANAGE, "/projects/{project_id}/members",
     lambda f, c: f.wired.projects.add_member(c, f.team.project_id, user_id=f.newcomer,
                                              role="creator")),
    ("remove member", MANAGE, "/projects/{project_id}/members/{user_id}",
     lambda f, c: f.wired.projects.remove_member(c, f.team.project_id, f.leaving)),
    ("disclose", MANAGE, "/projects/{project_id}/disclosures",
     lambda f, c: f.wired.disclosures.create(
         c, f.team.project_id, recipient=Recipient(type="payment_provider", name="PayCo"),
         purpose="payment_processing", legal_basis="contract", categories=["contact"],
         subject_ids=[f.team.owner.actor_id])),
]  # fmt: skip

CASES = [(who, op) for who in WHO for op in OPS]


async def fixture() -> Fixture:
    wired = in_memory()
    team = await make_team(wired)
    file = await wired.files.upload(
        team.owner,
        team.project_id,
        filename="brief.png",
        content_type="image/png",
        body=pieces(SAMPLES["image/png"]),
    )
    newcomer = await known(wired, caller("creator"))
    leaving = await known(wired, caller("creator"))
    await wired.projects.add_member(
        team.owner, team.project_id, user_id=leaving.actor_id, role="creator"
    )
    wired.access_log.accesses.clear()
    return Fixture(wired, team, file.file_id, newcomer.actor_id, leaving.actor_id)


@pytest.mark.parametrize(("who", "op"), CASES, ids=[f"{w.name} / {o[0]}" for w, o in CASES])
async def test_matrix(who: Who, op: tuple[str, str, str, Op]) -> None:
    _name, kind, route, run = op
    f = await fixture()
    base = who.make(f.team)
    c = Caller(base.actor_id, base.role, base.purpose, route)
    if kind in who.may:
        await run(f, c)
        assert f.wired.access_log.denials == []
        if kind == READ:
            (access,) = f.wired.access_log.accesses
            assert access.actor_id == c.actor_id
            assert access.route == route
            assert access.purpose == str(c.purpose or "project_execution")
    else:
        before = await f.wired.kernel.store.last_seq()
        with pytest.raises(ProjectNotFoundError):
            await run(f, c)
        (denial,) = f.wired.access_log.denials
        assert (denial.actor_id, denial.route, denial.project_id, denial.status) == (
            c.actor_id,
            route,
            f.team.project_id,
            404,
        )
        assert f.wired.access_log.accesses == []
        assert await f.wired.kernel.store.last_seq() == before  # nothing written

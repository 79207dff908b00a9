"""What the API tests share: people with tokens, a project with its team, stored events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import bson
import httpx

from mmgen.projects.bootstrap import Projects
from mmgen.projects.testing import SAMPLES, multipart_body, multipart_headers
from mmgen.runtime.testing import Tokens


@dataclass(frozen=True)
class Person:
    """Someone with a token: their id, role and the headers they send."""

    user_id: str
    role: str
    headers: dict[str, str]

    def declaring(self, purpose: str | None, tokens: Tokens) -> Person:
        """The same person, declaring another purpose (or none)."""
        _, headers = tokens.headers(self.role, self.user_id, purpose)
        return Person(self.user_id, self.role, headers)


@dataclass
class Team:
    project_id: str
    owner: Person
    creator: Person
    staff: Person
    file_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Api:
    """Thin helpers over the client, the tokens and the app's own database."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens, service: Projects) -> None:
        self.client = client
        self.tokens = tokens
        self.service = service
        assert service.runtime.db is not None
        self.db = service.runtime.db

    def person(self, role: str, purpose: str | None = None, user_id: str | None = None) -> Person:
        user_id, headers = self.tokens.headers(role, user_id or str(uuid.uuid4()), purpose)
        return Person(user_id, role, headers)

    async def known(self, role: str, purpose: str | None = None) -> Person:
        """A person whose account is known, as identity's `UserRegistered` would make it."""
        person = self.person(role, purpose)
        await self.service.known_users.register(person.user_id, role)
        return person

    async def team(
        self, *, title: str = "Spring campaign", requirements: str = "Two models"
    ) -> Team:
        owner = await self.known("client")
        creator = await self.known("creator")
        staff = await self.known("staff", "project_execution")
        created = await self.client.post(
            "/projects",
            headers=owner.headers,
            json={"title": title, "requirements": requirements, "budget": "5k_20k"},
        )
        assert created.status_code == 201, created.text
        project_id = created.json()["project_id"]
        for member in (creator, staff):
            added = await self.client.post(
                f"/projects/{project_id}/members",
                headers=owner.headers,
                json={"user_id": member.user_id, "role": member.role},
            )
            assert added.status_code == 201, added.text
        return Team(project_id, owner, creator, staff)

    async def upload(
        self,
        who: Person,
        project_id: str,
        data: bytes = SAMPLES["image/png"],
        *,
        filename: str = "brief.png",
        content_type: str = "image/png",
    ) -> httpx.Response:
        return await self.client.post(
            f"/projects/{project_id}/files",
            headers={**who.headers, **multipart_headers()},
            content=multipart_body(filename, content_type, data),
        )

    async def post_message(self, who: Person, project_id: str, text: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/projects/{project_id}/messages", headers=who.headers, json={"text": text}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def events(self, **query: Any) -> list[dict[str, Any]]:
        """Raw stored events matching `query`, in store order."""
        return await self.db["events"].find(query).sort("producer_seq", 1).to_list(None)

    async def denials_of(self, user_id: str) -> list[dict[str, Any]]:
        return await self.events(event_type="projects.AccessDenied", **{"actor.id": user_id})

    async def accesses_of(self, user_id: str) -> list[dict[str, Any]]:
        return await self.events(event_type="projects.DataAccessed", **{"actor.id": user_id})

    async def raw_dump(self) -> bytes:
        """Every document of every collection of the service's database, as BSON: what a raw
        scan of the database (or a backup of it) would see."""
        return await raw_dump(self.db)


async def raw_dump(db: Any) -> bytes:
    parts: list[bytes] = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            parts.append(bson.encode(doc))
    return b"".join(parts)

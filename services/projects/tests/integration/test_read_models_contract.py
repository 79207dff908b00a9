"""The read-model and chunk-store ports' contract, written once and run against the
in-memory fakes and the Mongo adapters on the session's real database."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from mmgen.events.envelope import PiiBlob
from mmgen.projects.adapters.memory import (
    InMemoryChunkStore,
    InMemoryDisclosuresIndex,
    InMemoryFilesIndex,
    InMemoryKnownUsers,
    InMemoryMessagesIndex,
    InMemoryProjectsReadModel,
)
from mmgen.projects.adapters.mongo_chunks import MongoChunkStore
from mmgen.projects.adapters.mongo_disclosures import MongoDisclosuresIndex
from mmgen.projects.adapters.mongo_known_users import MongoKnownUsers
from mmgen.projects.adapters.mongo_projects import MongoProjectsReadModel
from mmgen.projects.adapters.mongo_threads import MongoFilesIndex, MongoMessagesIndex
from mmgen.projects.adapters.ports import (
    DisclosureRow,
    FileRow,
    MessageRow,
    ProjectRow,
    StoredChunk,
)
from mmgen.projects.domain.events import Recipient
from mmgen.projects.domain.model import PersonalRef

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def blob(owner: str) -> PiiBlob:
    """A stand-in ciphertext, the same for the same owner (rows compare equal)."""
    seed = hashlib.sha256(owner.encode()).digest()
    return PiiBlob(owner=owner, key_id="dk-1", nonce=seed[:12], ciphertext=seed * 2)


@pytest.fixture(params=["memory", "mongo"])
async def adapters(request: pytest.FixtureRequest, mongo_db: Any) -> dict[str, Any]:
    if request.param == "memory":
        return {
            "projects": InMemoryProjectsReadModel(),
            "messages": InMemoryMessagesIndex(),
            "files": InMemoryFilesIndex(),
            "chunks": InMemoryChunkStore(),
            "users": InMemoryKnownUsers(),
            "disclosures": InMemoryDisclosuresIndex(),
        }
    made: dict[str, Any] = {
        "projects": MongoProjectsReadModel(mongo_db),
        "messages": MongoMessagesIndex(mongo_db),
        "files": MongoFilesIndex(mongo_db),
        "chunks": MongoChunkStore(mongo_db),
        "users": MongoKnownUsers(mongo_db),
        "disclosures": MongoDisclosuresIndex(mongo_db),
    }
    for adapter in made.values():
        await adapter.ensure_indexes()
    return made


def project(version: int, **changes: Any) -> ProjectRow:
    base: dict[str, Any] = {
        "project_id": "p1",
        "owner_id": "o1",
        "status": "open",
        "budget_band": "1k_5k",
        "deadline": date(2027, 2, 1),
        "created_at": NOW,
        "updated_at": NOW,
        "status_changed_at": NOW,
        "members": {"c1": "creator"},
        "version": version,
        "title_ref": PersonalRef("e1", "projects.ProjectCreated", 1, blob("project:p1")),
    }
    return ProjectRow(**{**base, **changes})


async def test_projects_keep_the_newest_state(adapters: dict[str, Any]) -> None:
    projects = adapters["projects"]
    assert await projects.put(project(2))
    assert not await projects.put(project(1, status="cancelled"))  # late: ignored
    assert not await projects.put(project(2, status="cancelled"))  # same version: ignored
    assert await projects.put(
        project(3, status="in_progress", members={"c1": "creator", "s1": "staff"})
    )
    row = await projects.get("p1")
    assert row == project(3, status="in_progress", members={"c1": "creator", "s1": "staff"})
    assert await projects.get("nope") is None
    assert await projects.relations_of("s1") == {"p1": "staff"}
    assert await projects.relations_of("o1") == {"p1": "owner"}
    assert await projects.relations_of("x") == {}
    assert await projects.ids_owned_by("o1") == ["p1"]
    assert [r.project_id for r in await projects.many(["zz", "p1"])] == ["p1"]


async def test_anonymisation_sticks(adapters: dict[str, Any]) -> None:
    projects = adapters["projects"]
    await projects.put(project(1))
    assert await projects.anonymize("p1")
    assert not await projects.anonymize("p1")
    await projects.put(project(2, status="completed"))  # a later state from a stale fold
    row = await projects.get("p1")
    assert row is not None
    assert (row.status, row.anonymized, row.title_ref) == ("completed", True, None)


def message(number: int, author: str | None = "a1", project_id: str = "p1") -> MessageRow:
    return MessageRow(
        project_id=project_id,
        number=number,
        message_id=f"m{number}",
        author_id=author,
        posted_at=NOW + timedelta(seconds=number),
        event_id=f"e{number}",
        schema_version=1,
        pii=blob(f"subject:{author}"),
    )


async def test_messages_by_number(adapters: dict[str, Any]) -> None:
    messages = adapters["messages"]
    assert await messages.last_number("p1") == 0
    assert [await messages.next_number("p1") for _ in range(3)] == [1, 2, 3]
    assert await messages.next_number("p2") == 1
    for n, author in ((1, "a1"), (2, "a2"), (3, "a1")):
        assert await messages.add(message(n, author))
    assert not await messages.add(message(2, "a2"))
    assert [m.number for m in await messages.window("p1", [3, 2, 1, 0])] == [3, 2, 1]
    assert await messages.window("p1", []) == []
    assert await messages.add(message(7))  # a row rebuilt from the store keeps numbering ahead
    assert await messages.next_number("p1") == 8
    assert await messages.count_of_author("a1") == 3
    assert [m.number for m in await messages.of_author("a1", 10)] == [1, 3, 7]
    assert await messages.erase_author("a1") == 3
    erased = await messages.window("p1", [1])
    assert (erased[0].author_id, erased[0].pii, erased[0].erased) == (None, None, True)
    assert await messages.count_of_author("a1") == 0
    (kept,) = await messages.window("p1", [2])
    assert kept.pii is not None and kept == message(2, "a2")
    assert await messages.delete_project("p1") == 4
    assert await messages.window("p1", [1, 2, 3, 7]) == []


async def test_the_first_numbers_of_a_project_taken_at_once_are_distinct(
    adapters: dict[str, Any],
) -> None:
    """Concurrent first posts race to create the project's counter: each still gets a
    number, and no two the same."""
    numbers = await asyncio.gather(*(adapters["messages"].next_number("p9") for _ in range(16)))
    assert sorted(numbers) == list(range(1, 17))


def file(number: int, uploader: str | None = "u1", project_id: str = "p1") -> FileRow:
    return FileRow(
        project_id=project_id,
        number=number,
        file_id=f"{project_id}-f{number}",
        uploader_id=uploader,
        content_type="image/png",
        size=100,
        chunks=1,
        chunk_bytes=1024,
        key_id="dk-1",
        uploaded_at=NOW + timedelta(seconds=number),
        event_id=f"e{number}",
        schema_version=1,
        name_pii=blob(f"subject:{uploader}"),
    )


async def test_files_by_number_and_id(adapters: dict[str, Any]) -> None:
    files = adapters["files"]
    for n, uploader in ((1, "u1"), (2, "u2")):
        assert await files.add(file(n, uploader))
    assert not await files.add(file(1, "u1"))
    assert await files.get("p1-f2") == file(2, "u2")
    assert await files.get("nope") is None
    assert [f.number for f in await files.window("p1", [2, 1])] == [2, 1]
    assert await files.last_number("p1") == 2
    assert await files.erase_uploader("u1") == ["p1-f1"]
    gone = await files.get("p1-f1")
    assert gone is not None and gone.erased and gone.name_pii is None and gone.uploader_id is None
    assert await files.count_of_uploader("u2") == 1
    assert [f.file_id for f in await files.of_uploader("u2", 10)] == ["p1-f2"]
    assert sorted(await files.delete_project("p1")) == ["p1-f1", "p1-f2"]
    assert await files.get("p1-f2") is None


async def test_chunks(adapters: dict[str, Any]) -> None:
    chunks = adapters["chunks"]
    await chunks.begin("f1", NOW)
    await chunks.begin("f2", NOW + timedelta(hours=1))
    for i in range(5):
        await chunks.put(StoredChunk("f1", i, bytes(12), bytes([i]) * 10))
    await chunks.put(StoredChunk("f2", 0, bytes(12), b"other"))
    assert [c.index for c in await chunks.read("f1", [4, 0, 2, 9])] == [0, 2, 4]
    assert await chunks.stale_uploads(NOW + timedelta(minutes=1)) == ["f1"]
    await chunks.finish("f1")
    assert await chunks.stale_uploads(NOW + timedelta(hours=2)) == ["f2"]
    assert await chunks.delete("f1") == 5
    assert await chunks.read("f1", [0, 1]) == []
    assert [c.data for c in await chunks.read("f2", [0])] == [b"other"]


async def test_known_users(adapters: dict[str, Any]) -> None:
    users = adapters["users"]
    await users.register("u1", "creator")
    await users.register("u1", "staff")  # a redelivery never changes the role
    found = await users.get("u1")
    assert found is not None and (found.role, found.status) == ("creator", "active")
    await users.close("u1")
    closed = await users.get("u1")
    assert closed is not None and closed.status == "closed" and not closed.active
    await users.register("u1", "creator")  # does not reopen
    assert (await users.get("u1")).status == "closed"  # type: ignore[union-attr]
    assert await users.forget("u1")
    assert not await users.forget("u1")
    await users.close("u1")
    await users.register("u1", "creator")
    tomb = await users.get("u1")
    assert tomb is not None and (tomb.role, tomb.status) == (None, "erased")
    assert await users.get("u2") is None


async def test_disclosures(adapters: dict[str, Any]) -> None:
    disclosures = adapters["disclosures"]
    row = DisclosureRow(
        disclosure_id="d1",
        project_id="p1",
        recipient=Recipient(type="processor", name="Prints Ltd"),
        purpose="project_execution",
        legal_basis="contract",
        categories=("files",),
        subject_ids=("s1", "s2"),
        disclosed_at=NOW,
        actor_id="o1",
    )
    assert await disclosures.add(row)
    assert not await disclosures.add(row)
    assert await disclosures.of_subject("s2", 10) == [row]
    assert await disclosures.count_of_subject("s1") == 1
    assert await disclosures.forget_subject("s1") == 1
    assert await disclosures.of_subject("s1", 10) == []
    (left,) = await disclosures.of_subject("s2", 10)
    assert left.subject_ids == ("s2",)

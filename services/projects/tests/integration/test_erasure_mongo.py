"""Erasure on the real database: after a member is erased their messages and files read as
erased for everyone, others' stay intact, and nothing in the database can still yield them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from bson import encode

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.erased import is_erased
from mmgen.events.mongo_testing import watched_database
from mmgen.projects.domain.errors import FileErasedError
from mmgen.projects.testing import collect, make_team, on_mongo, pieces
from mmgen.runtime.erasure import AnonymizeOrder, EraseOrder


def command(kind: str) -> Envelope:
    return Envelope(
        event_type=f"retention.{kind}",
        schema_version=1,
        producer="retention",
        stream_id=f"request:{uuid.uuid4()}",
        stream_version=1,
        action="erase",
        resource=Resource(type="subject", id="s"),
    )


async def test_erasing_a_member_on_the_database(mongo_db: Any) -> None:
    wired = await on_mongo(mongo_db)
    team = await make_team(wired)
    creator = team.creator.actor_id
    await wired.messages.post(team.owner, team.project_id, "owner: schedule attached")
    await wired.messages.post(team.creator, team.project_id, "creator: call me on 555-0100")
    mine = await wired.files.upload(
        team.creator,
        team.project_id,
        filename="me.txt",
        content_type="text/plain",
        body=pieces(b"creator's own notes\n" * 5000),
    )
    theirs = await wired.files.upload(
        team.owner,
        team.project_id,
        filename="brief.txt",
        content_type="text/plain",
        body=pieces(b"owner's brief\n" * 5000),
    )
    outcome = await wired.erasure.erase_subject(
        EraseOrder("req-1", creator, frozenset(), command("EraseSubject"))
    )
    assert outcome.keys_shredded == 1

    page = (await wired.messages.list(team.owner, team.project_id, limit=10)).value.items
    assert [(m.text, m.erased) for m in page] == [
        (None, True),
        ("owner: schedule attached", False),
    ]
    with pytest.raises(FileErasedError):
        await wired.files.download(team.staff, team.project_id, mine.file_id)
    kept = await wired.files.download(team.staff, team.project_id, theirs.file_id)
    assert await collect(kept.value.content) == b"owner's brief\n" * 5000

    # Nothing in the database can yield their data any more: the key is gone (only the
    # erasure marker is left), their chunks are deleted, the read models hold no ciphertext
    # of theirs, and every event of theirs in the store folds to "erased".
    key = await mongo_db["keystore"].find_one({"_id": f"subject:{creator}"})
    assert key is not None and key["state"] == "erased" and "wrapped" not in key
    assert await mongo_db["file_chunks"].count_documents({"file_id": mine.file_id}) == 0
    for name in ("messages", "files", "projects", "disclosures", "known_users"):
        async for doc in mongo_db[name].find({}):
            assert f"subject:{creator}".encode() not in encode(doc), (name, doc["_id"])
    store = wired.kernel.store
    events = await wired.kernel.repository.decode(await store.read_range(1, 1000))
    owned = [e for e in events if e.envelope.owner == f"subject:{creator}"]
    assert len(owned) == 2  # the message and the file
    assert all(is_erased(e.personal) for e in owned)
    footprint = await wired.erasure.footprint(creator)
    assert footprint.readable_personal_fields == 0 and footprint.key_erased


async def test_anonymising_a_project_on_the_database(mongo_db: Any) -> None:
    wired = await on_mongo(mongo_db)
    team = await make_team(wired, title="Secret launch", requirements="Codename Falcon")
    await wired.projects.change_status(team.staff, team.project_id, "in_progress")
    outcome = await wired.erasure.anonymize_resource(
        AnonymizeOrder("req-2", "project", team.project_id, command("AnonymizeResource"))
    )
    assert outcome.keys_shredded == 1
    read = (await wired.projects.get(team.owner, team.project_id)).value
    assert (read.title, read.requirements) == (None, None)
    assert (read.facts.status, read.facts.budget_band) == ("in_progress", "5k_20k")
    assert read.facts.anonymized
    row = await mongo_db["projects"].find_one({"_id": team.project_id})
    assert row["anonymized"] is True and row["title_ref"] is None
    key = await mongo_db["keystore"].find_one({"_id": f"project:{team.project_id}"})
    assert key is not None and key["state"] == "erased"


async def _erasure_commands(uri: str, name: str, messages: int) -> list[dict[str, Any]]:
    """The commands erasing a member who wrote `messages` messages sends to the database."""
    async with watched_database(uri, name) as (db, commands):
        wired = await on_mongo(db)
        team = await make_team(wired)
        for n in range(messages):
            await wired.messages.post(team.creator, team.project_id, f"creator's message {n}")
        commands.clear()
        await wired.erasure.erase_subject(
            EraseOrder("req-n", team.creator.actor_id, frozenset(), command("EraseSubject"))
        )
        return list(commands.sent)


async def test_erasing_a_member_costs_the_same_however_much_they_wrote(
    mongo_uri: str, mongo_db: Any
) -> None:
    few = await _erasure_commands(mongo_uri, mongo_db.name + "_few", 2)
    many = await _erasure_commands(mongo_uri, mongo_db.name + "_many", 40)
    # The rows of their messages are cleared by one update, not one per message.
    assert [c["name"] for c in many] == [c["name"] for c in few]
    assert len([c for c in many if c.get("update") == "messages"]) == 1

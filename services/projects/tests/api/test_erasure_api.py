"""Retention's commands through the real broker: a member's erasure and a project's
anonymisation, checked through the API, in the raw database and on `projects.events`."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import read_all
from mmgen.projects.settings import ProjectsSettings
from mmgen.projects.testing import SAMPLES
from mmgen.runtime.testing import (
    anonymize_command,
    assert_problem,
    erase_command,
    eventually,
    publish_command,
)
from services.projects.tests.projects_kit import Api

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Bytes no other file holds: found anywhere, they would be the erased file's content.
CREATOR_FILE = SAMPLES["image/png"][:16] + b"Creator's secret portfolio, page 1. " * 64


async def _answer(api: Api, event_type: str, **query: Any) -> dict[str, Any]:
    async def find() -> list[dict[str, Any]]:
        return await api.events(event_type=event_type, **query)

    [answer] = await eventually(find, timeout=30)
    return answer


async def test_an_erased_members_messages_and_files_read_as_erased_and_nothing_of_them_remains(
    api: Api, settings: ProjectsSettings
) -> None:
    team = await api.team()
    secret = "Creator-phone-555-0199-Quillfeather"
    await api.post_message(team.owner, team.project_id, "Owner: welcome aboard")
    await api.post_message(team.creator, team.project_id, f"Creator: call me on {secret}")
    await api.post_message(team.staff, team.project_id, "Staff: studio booked")
    mine = await api.upload(team.creator, team.project_id, CREATOR_FILE, filename=f"{secret}.png")
    theirs = await api.upload(team.owner, team.project_id, SAMPLES["application/pdf"],
                              filename="brief.pdf", content_type="application/pdf")  # fmt: skip
    assert mine.status_code == theirs.status_code == 201
    creator_file, owner_file = mine.json()["file_id"], theirs.json()["file_id"]

    command = erase_command(team.creator.user_id)
    await publish_command(settings, command)
    answer = await _answer(api, "projects.SubjectErased", subject_id=team.creator.user_id)
    assert answer["data"]["keys_shredded"] == 1
    assert answer["data"]["records_anonymized"] == {"communication": 1, "files": 1}
    assert answer["data"]["records_deleted"]["project"] == 1  # left the project

    # --- through the API: theirs read as erased, everyone else's intact ------------------------
    page = await api.client.get(f"/projects/{team.project_id}/messages", headers=team.owner.headers)
    texts = {m["text"]: m for m in page.json()["items"]}
    assert set(texts) == {"Owner: welcome aboard", None, "Staff: studio booked"}
    assert texts[None]["erased"] is True and texts[None]["author_id"] is None
    files = await api.client.get(f"/projects/{team.project_id}/files", headers=team.owner.headers)
    by_id = {f["file_id"]: f for f in files.json()["items"]}
    assert by_id[creator_file]["erased"] is True and by_id[creator_file]["filename"] is None
    assert by_id[owner_file]["filename"] == "brief.pdf"
    gone = await api.client.get(
        f"/projects/{team.project_id}/files/{creator_file}", headers=team.owner.headers
    )
    assert_problem(gone, 410, "file-erased")
    kept = await api.client.get(
        f"/projects/{team.project_id}/files/{owner_file}", headers=team.staff.headers
    )
    assert kept.content == SAMPLES["application/pdf"]
    project = await api.client.get(f"/projects/{team.project_id}", headers=team.owner.headers)
    assert team.creator.user_id not in {m["user_id"] for m in project.json()["members"]}

    # --- the raw database: none of their text or bytes, their chunks gone, their key shredded --
    dump = await api.raw_dump()
    assert secret.encode() not in dump
    assert CREATOR_FILE[16:80] not in dump
    assert await api.db["file_chunks"].count_documents({"file_id": creator_file}) == 0
    assert await api.db["file_chunks"].count_documents({"file_id": owner_file}) > 0
    assert await api.service.kernel.keystore.is_erased(f"subject:{team.creator.user_id}")

    # --- the topic: every event relayed, none readable for them, no plaintext ----------------
    last = await api.service.kernel.store.last_seq()
    records = await read_all(
        settings.kafka_bootstrap, settings.topic("projects.events"), expect=last, timeout_s=30
    )
    raw = b"".join(r.value or b"" for r in records)
    assert secret.encode() not in raw and CREATOR_FILE[16:80] not in raw
    theirs_on_topic = [
        Envelope.from_wire(r.value)
        for r in records
        if r.value and team.creator.user_id.encode() in r.value
    ]
    posted = [e for e in theirs_on_topic if e.event_type == "projects.MessagePosted"]
    assert posted, "their message reached the topic"
    for envelope in posted + [
        e for e in theirs_on_topic if e.event_type == "projects.FileUploaded"
    ]:
        event = await api.service.kernel.mapper.to_domain(envelope)
        assert event.erased  # the ciphertext on the topic can no longer be opened


async def test_an_anonymised_project_keeps_only_its_facts(
    api: Api, settings: ProjectsSettings
) -> None:
    team = await api.team(title="Gala night, client Hartley", requirements="Ten hosts, black tie")
    await api.post_message(team.creator, team.project_id, "see you at the gala")
    started = await api.client.post(
        f"/projects/{team.project_id}/status",
        headers=team.owner.headers,
        json={"status": "in_progress"},
    )
    before = started.json()

    await publish_command(settings, anonymize_command("project", team.project_id))
    answer = await _answer(
        api, "projects.ResourceAnonymized", **{"data.resource_id": team.project_id}
    )
    assert answer["data"]["keys_shredded"] == 1

    read = await api.client.get(f"/projects/{team.project_id}", headers=team.owner.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["title"], body["requirements"], body["anonymized"]) == (None, None, True)
    for fact in ("status", "budget", "deadline", "created_at", "status_changed_at"):
        assert body[fact] == before[fact], fact
    mine = await api.client.get("/projects", headers=team.owner.headers)
    [line] = [p for p in mine.json()["items"] if p["project_id"] == team.project_id]
    assert (line["title"], line["anonymized"], line["status"]) == (None, True, "in_progress")
    thread = await api.client.get(
        f"/projects/{team.project_id}/messages", headers=team.owner.headers
    )
    assert thread.json()["items"] == []
    refused = await api.client.post(
        f"/projects/{team.project_id}/messages", headers=team.owner.headers, json={"text": "x"}
    )
    assert_problem(refused, 409, "project-anonymized")
    assert b"Hartley" not in await api.raw_dump()

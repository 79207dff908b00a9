"""Messages and files through their use cases: pages, cursors, what is recorded, refusals."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from mmgen.projects.domain.errors import (
    ContentMismatchError,
    ContentTypeNotAllowedError,
    CursorInvalidError,
    FileTooLargeError,
    ProjectClosedError,
    ProjectFileNotFoundError,
)
from mmgen.projects.testing import (
    SAMPLES,
    Wired,
    collect,
    in_memory,
    make_team,
    pieces,
    settings_for_tests,
)


@pytest.fixture
def wired() -> Wired:
    return in_memory(settings_for_tests(file_chunk_bytes=16 * 1024, max_file_bytes=256 * 1024))


async def test_messages_under_their_authors_keys_newest_first(wired: Wired) -> None:
    team = await make_team(wired)
    for n in range(5):
        author = team.owner if n % 2 == 0 else team.creator
        await wired.messages.post(author, team.project_id, f"message {n}")
    first = await wired.messages.list(team.staff, team.project_id, limit=3)
    assert [m.text for m in first.value.items] == ["message 4", "message 3", "message 2"]
    assert first.value.next_position == {"before": 3}
    rest = await wired.messages.list(
        team.staff, team.project_id, limit=3, position=first.value.next_position
    )
    assert [m.number for m in rest.value.items] == [2, 1]
    assert rest.value.next_position is None
    assert first.access.categories == ("communication",)
    assert first.access.subject_ids == ()  # a page names its slots, not its authors
    assert first.access.records == 3
    assert first.access.resource_type == "project_messages"
    owners = {
        e.pii.owner
        for e in await wired.kernel.store.read_range(1, 100)
        if e.event_type == "projects.MessagePosted" and e.pii is not None
    }
    assert owners == {f"subject:{team.owner.actor_id}", f"subject:{team.creator.actor_id}"}


async def test_a_cursor_from_elsewhere_is_refused(wired: Wired) -> None:
    team = await make_team(wired)
    await wired.messages.post(team.owner, team.project_id, "hello")
    for position in ({"before": 99}, {"before": "2"}, {"after": 1}, {"before": True}):
        with pytest.raises(CursorInvalidError):
            await wired.messages.list(team.owner, team.project_id, limit=5, position=position)


async def test_nothing_is_added_to_a_closed_project(wired: Wired) -> None:
    team = await make_team(wired)
    await wired.projects.change_status(team.owner, team.project_id, "cancelled")
    with pytest.raises(ProjectClosedError):
        await wired.messages.post(team.creator, team.project_id, "late")
    with pytest.raises(ProjectClosedError):
        await wired.files.upload(
            team.creator,
            team.project_id,
            filename="a.png",
            content_type="image/png",
            body=pieces(SAMPLES["image/png"]),
        )
    # ... but it can still be read.
    assert (await wired.messages.list(team.creator, team.project_id, limit=5)).value.items == []


async def test_files_round_trip_and_downloads_are_recorded(wired: Wired) -> None:
    team = await make_team(wired)
    data = SAMPLES["application/pdf"] + os.urandom(100_000)
    view = await wired.files.upload(
        team.creator,
        team.project_id,
        filename="../../brief.pdf",
        content_type="application/pdf",
        body=pieces(data),
    )
    assert (view.filename, view.size, view.content_type) == (
        "brief.pdf",
        len(data),
        "application/pdf",
    )
    listed = await wired.files.list(team.owner, team.project_id, limit=10)
    assert [f.filename for f in listed.value.items] == ["brief.pdf"]
    assert listed.access.categories == ("files",)
    download = await wired.files.download(team.staff, team.project_id, view.file_id)
    assert await collect(download.value.content) == data
    assert download.access.resource_type == "file"
    assert download.access.resource_id == view.file_id
    assert download.access.subject_ids == (team.creator.actor_id,)
    assert download.access.purpose == "project_execution"
    other = await make_team(wired)
    with pytest.raises(ProjectFileNotFoundError):  # a file of another project
        await wired.files.download(other.owner, other.project_id, view.file_id)


async def test_refused_uploads_store_no_event_and_no_chunk(wired: Wired) -> None:
    team = await make_team(wired)
    before = await wired.kernel.store.last_seq()
    with pytest.raises(ContentTypeNotAllowedError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="x.svg",
            content_type="image/svg+xml",
            body=pieces(b"<svg/>"),
        )
    with pytest.raises(ContentMismatchError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="x.png",
            content_type="image/png",
            body=pieces(b"#!/bin/sh\nrm -rf /\n" * 100),
        )
    with pytest.raises(FileTooLargeError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="x.png",
            content_type="image/png",
            body=pieces(SAMPLES["image/png"] + bytes(300 * 1024)),
        )
    assert await wired.kernel.store.last_seq() == before
    assert wired.chunks.chunks == {}  # type: ignore[attr-defined]
    assert wired.chunks.pending == {}  # type: ignore[attr-defined]


async def test_a_failed_append_deletes_the_stored_chunks(wired: Wired) -> None:
    team = await make_team(wired)

    async def failing_next_number(project_id: str) -> int:
        raise RuntimeError("database went away")

    wired.files_rm.next_number = failing_next_number  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="a.png",
            content_type="image/png",
            body=pieces(SAMPLES["image/png"] * 100),
        )
    assert wired.chunks.chunks == {}  # type: ignore[attr-defined]


async def test_stale_uploads_are_purged_unless_recorded(wired: Wired) -> None:
    team = await make_team(wired)
    view = await wired.files.upload(
        team.owner,
        team.project_id,
        filename="a.png",
        content_type="image/png",
        body=pieces(SAMPLES["image/png"]),
    )
    # A crash's leftover: chunks stored, no event; and a recorded upload still marked pending.
    leftover = await wired.content.store(
        file_id="leftover",
        owner=team.owner.key_owner,
        content_type="image/png",
        body=pieces(SAMPLES["image/png"]),
    )
    await wired.chunks.begin(view.file_id, wired.content.clock() - timedelta(hours=2))
    await wired.chunks.begin(leftover.file_id, wired.content.clock() - timedelta(hours=2))
    assert await wired.files.purge_stale_uploads(timedelta(hours=1)) == 1
    assert await wired.chunks.read("leftover", [0]) == []
    assert len(await wired.chunks.read(view.file_id, [0])) == 1
    assert await wired.chunks.stale_uploads(wired.content.clock()) == []

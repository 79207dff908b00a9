"""Files on the real database: what is stored is ciphertext only, refused uploads leave
nothing, and a 100 MiB upload and download stream through in bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import encode

from mmgen.projects.domain.errors import ContentMismatchError, FileTooLargeError
from mmgen.projects.testing import (
    SAMPLES,
    Team,
    Wired,
    collect,
    make_team,
    on_mongo,
    pieces,
    settings_for_tests,
)

MIB = 1024 * 1024
MARKER = b"UNMISTAKABLE-PLAINTEXT-7f3a"


async def raw_dump(db: Any) -> bytes:
    """Every document of every collection of the database, as stored (BSON)."""
    dump = bytearray()
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            dump += encode(doc)
    return bytes(dump)


async def counts(db: Any) -> dict[str, int]:
    return {name: await db[name].count_documents({}) for name in await db.list_collection_names()}


@pytest.fixture
async def setup(mongo_db: Any) -> tuple[Wired, Team]:
    wired = await on_mongo(
        mongo_db, settings_for_tests(file_chunk_bytes=64 * 1024, max_file_bytes=MIB)
    )
    return wired, await make_team(wired)


async def test_stored_chunks_hold_none_of_the_plaintext(
    mongo_db: Any, setup: tuple[Wired, Team]
) -> None:
    wired, team = setup
    text = (MARKER + b" line of the brief\n") * 20_000  # ~900 KiB over 14 chunks
    view = await wired.files.upload(
        team.creator,
        team.project_id,
        filename="MARKER-NAME-brief.txt",
        content_type="text/plain; charset=utf-8",
        body=pieces(text, 10_000),
    )
    await wired.messages.post(team.creator, team.project_id, "MARKER-MESSAGE text")
    stored = await mongo_db["file_chunks"].count_documents({"file_id": view.file_id})
    assert stored == -(-len(text) // (64 * 1024))
    dump = await raw_dump(mongo_db)
    assert MARKER not in dump
    assert b"line of the brief" not in dump
    assert b"MARKER-NAME" not in dump
    assert b"MARKER-MESSAGE" not in dump
    download = await wired.files.download(team.owner, team.project_id, view.file_id)
    assert await collect(download.value.content) == text


async def test_over_the_limit_leaves_nothing_stored(
    mongo_db: Any, setup: tuple[Wired, Team]
) -> None:
    wired, team = setup
    await wired.messages.post(team.owner, team.project_id, "hello")  # their key exists
    before = await counts(mongo_db)
    with pytest.raises(FileTooLargeError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="big.png",
            content_type="image/png",
            body=pieces(SAMPLES["image/png"] + bytes(2 * MIB), 50_000),
        )
    with pytest.raises(ContentMismatchError):
        await wired.files.upload(
            team.owner,
            team.project_id,
            filename="fake.png",
            content_type="image/png",
            body=pieces(SAMPLES["application/pdf"] * 200),
        )
    after = await counts(mongo_db)
    assert {k: after.get(k, 0) for k in before} == before
    assert after.get("file_chunks", 0) == 0
    assert after.get("file_uploads", 0) == 0


async def test_a_100_mib_upload_and_download_stream_in_bounded_memory(mongo_db: Any) -> None:
    size = 100 * MIB
    wired = await on_mongo(mongo_db, settings_for_tests(max_file_bytes=size))
    team = await make_team(wired)
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        head = SAMPLES["image/png"][:16]
        first = head + block[len(head) :]
        expected.update(first)
        yield first
        for _ in range(size // len(block) - 1):
            expected.update(block)
            yield block

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        view = await wired.files.upload(
            team.owner,
            team.project_id,
            filename="video.png",
            content_type="image/png",
            body=body(),
        )
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        download = await wired.files.download(team.creator, team.project_id, view.file_id)
        received = hashlib.sha256()
        total = 0
        async for piece in download.value.content:
            received.update(piece)
            total += len(piece)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert view.size == size == total
    assert received.digest() == expected.digest()
    assert upload_peak - baseline < 50 * MIB, (
        f"upload grew {(upload_peak - baseline) / MIB:.1f} MiB"
    )
    assert download_peak - baseline < 50 * MIB, (
        f"download grew {(download_peak - baseline) / MIB:.1f} MiB"
    )

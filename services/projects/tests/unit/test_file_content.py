"""Encrypted, chunked file contents over the in-memory chunk store: round trips, refusals
that leave nothing behind, and stored chunks that are tampered with."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from mmgen.events.keys import InMemoryKeystore, MasterKey, MasterKeyring
from mmgen.projects.adapters.file_content import EncryptedFileContent
from mmgen.projects.adapters.memory import InMemoryChunkStore
from mmgen.projects.domain.errors import (
    ContentMismatchError,
    FileContentCorruptError,
    FileEmptyError,
    FileErasedError,
    FileTooLargeError,
)
from mmgen.projects.testing import SAMPLES, collect, pieces

CHUNK = 16 * 1024
OWNER = "subject:u1"


@pytest.fixture
def chunks() -> InMemoryChunkStore:
    return InMemoryChunkStore()


@pytest.fixture
def keystore() -> InMemoryKeystore:
    return InMemoryKeystore(MasterKeyring(MasterKey.generate()))


@pytest.fixture
def content(chunks: InMemoryChunkStore, keystore: InMemoryKeystore) -> EncryptedFileContent:
    return EncryptedFileContent(
        chunks, keystore, chunk_bytes=CHUNK, max_bytes=10 * CHUNK, read_window=3
    )


def png(size: int) -> bytes:
    head = SAMPLES["image/png"]
    return (head + os.urandom(size))[:size]


async def read_back(content: EncryptedFileContent, stored: object) -> bytes:
    return await collect(
        await content.open(
            file_id=stored.file_id,  # type: ignore[attr-defined]
            owner=OWNER,
            key_id=stored.key_id,  # type: ignore[attr-defined]
            chunks=stored.chunks,  # type: ignore[attr-defined]
        )
    )


@pytest.mark.parametrize(
    ("size", "chunks_expected"),
    [(16, 1), (CHUNK - 1, 1), (CHUNK, 1), (CHUNK + 1, 2), (3 * CHUNK, 3), (7 * CHUNK + 5, 8)],
)
async def test_round_trip(
    content: EncryptedFileContent, chunks: InMemoryChunkStore, size: int, chunks_expected: int
) -> None:
    data = png(size)
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type="image/png", body=pieces(data)
    )
    assert (stored.size, stored.chunks) == (size, chunks_expected)
    assert len(chunks.chunks) == chunks_expected
    assert await read_back(content, stored) == data


@pytest.mark.parametrize("content_type", sorted(SAMPLES))
async def test_every_accepted_type_round_trips(
    content: EncryptedFileContent, content_type: str
) -> None:
    data = SAMPLES[content_type]
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type=content_type, body=pieces(data, 5)
    )
    assert await read_back(content, stored) == data


async def test_over_the_limit_stops_and_keeps_nothing(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield png(1000)
        while True:
            consumed += 1
            yield os.urandom(4096)

    with pytest.raises(FileTooLargeError):
        await content.store(file_id="f1", owner=OWNER, content_type="image/png", body=endless())
    assert consumed * 4096 <= 10 * CHUNK + 4096  # stopped at the limit, not at the end
    assert chunks.chunks == {}
    assert chunks.pending == {}


async def test_exactly_the_limit_is_accepted(content: EncryptedFileContent) -> None:
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type="image/png", body=pieces(png(10 * CHUNK))
    )
    assert stored.size == 10 * CHUNK


async def test_bytes_of_another_type_are_refused_before_anything_is_stored(
    content: EncryptedFileContent, chunks: InMemoryChunkStore, keystore: InMemoryKeystore
) -> None:
    with pytest.raises(ContentMismatchError):
        await content.store(
            file_id="f1",
            owner=OWNER,
            content_type="image/png",
            body=pieces(SAMPLES["image/jpeg"] + os.urandom(3 * CHUNK)),
        )
    assert chunks.chunks == {}
    assert chunks.pending == {}
    assert keystore.wrapped_keys() == []  # not even the uploader's key was minted


async def test_text_with_binary_after_the_first_chunks_is_refused_and_removed(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    data = b"plain text line\n" * (3 * CHUNK // 16) + b"\x00\x01binary"
    with pytest.raises(ContentMismatchError):
        await content.store(file_id="f1", owner=OWNER, content_type="text/plain", body=pieces(data))
    assert chunks.chunks == {}


async def test_an_empty_file_is_refused(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    with pytest.raises(FileEmptyError):
        await content.store(file_id="f1", owner=OWNER, content_type="image/png", body=pieces(b""))
    assert chunks.pending == {}


async def test_a_client_that_goes_away_leaves_nothing(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield png(3 * CHUNK)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await content.store(file_id="f1", owner=OWNER, content_type="image/png", body=broken())
    assert chunks.chunks == {}
    assert chunks.pending == {}


async def test_reordered_chunks_are_detected(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type="image/png", body=pieces(png(3 * CHUNK))
    )
    first, second = chunks.chunks[("f1", 0)], chunks.chunks[("f1", 1)]
    chunks.chunks[("f1", 0)] = replace(second, index=0)
    chunks.chunks[("f1", 1)] = replace(first, index=1)
    with pytest.raises(FileContentCorruptError):
        await read_back(content, stored)


async def test_a_truncated_file_is_detected(
    content: EncryptedFileContent, chunks: InMemoryChunkStore
) -> None:
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type="image/png", body=pieces(png(3 * CHUNK))
    )
    del chunks.chunks[("f1", 2)]
    with pytest.raises(FileContentCorruptError, match="missing"):
        await read_back(content, stored)
    # Even with its metadata edited to the shorter length, the new last chunk does not open.
    with pytest.raises(FileContentCorruptError, match="authentication"):
        await read_back(content, replace(stored, chunks=2))


async def test_a_shredded_owner_reads_as_erased_before_any_byte(
    content: EncryptedFileContent, keystore: InMemoryKeystore
) -> None:
    stored = await content.store(
        file_id="f1", owner=OWNER, content_type="image/png", body=pieces(png(CHUNK))
    )
    await keystore.shred(OWNER)
    with pytest.raises(FileErasedError):
        await read_back(content, stored)

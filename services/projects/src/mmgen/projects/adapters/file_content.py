"""File contents: streamed in, checked, sealed chunk by chunk, streamed back out decrypted.

An upload never holds more than one chunk (plus the piece being received) in memory: bytes
are re-cut into chunks of `chunk_bytes`, each sealed under the uploader's data key
(`ChunkCipher`) and written before the next is read. Before the first chunk is written, the
head is checked against the declared type's signature (plain text is checked all along);
the size limit is checked on every piece received. Any failure — too large, wrong type, a
client that goes away — deletes whatever chunks were written, so a refused upload leaves
nothing. The upload is marked pending until its event is recorded, so a crash's leftovers
can be found and purged.

A download reads a bounded window of chunks per round trip and yields them decrypted; the
key is fetched before the first byte, so an erased file is refused, not cut off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

from mmgen.events.envelope import utc_now
from mmgen.events.keys import Keystore
from mmgen.projects.adapters.chunk_cipher import ChunkCipher
from mmgen.projects.adapters.ports import ChunkStore, StoredChunk
from mmgen.projects.domain.content_types import (
    SNIFF_BYTES,
    TextValidator,
    signature_matches,
)
from mmgen.projects.domain.errors import (
    ContentMismatchError,
    FileContentCorruptError,
    FileEmptyError,
    FileErasedError,
    FileTooLargeError,
)


@dataclass(frozen=True)
class StoredContent:
    """What an upload stored: enough to read it back (with the owner's key)."""

    file_id: str
    key_id: str
    content_type: str
    size: int
    chunks: int
    chunk_bytes: int


class EncryptedFileContent:
    """Chunked, encrypted file contents over a `ChunkStore` and the service's keystore."""

    def __init__(
        self,
        chunks: ChunkStore,
        keystore: Keystore,
        *,
        chunk_bytes: int,
        max_bytes: int,
        read_window: int = 4,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.chunks = chunks
        self.keystore = keystore
        self.chunk_bytes = chunk_bytes
        self.max_bytes = max_bytes
        self.read_window = read_window
        self.clock = clock

    async def store(
        self, *, file_id: str, owner: str, content_type: str, body: AsyncIterable[bytes]
    ) -> StoredContent:
        """Stream `body` into sealed chunks; refuse (keeping nothing) on any failure.

        The owner's key is fetched (or minted) only once the bytes passed the signature
        check, so an upload refused at its head leaves not even a key behind.
        """
        sealer = _LazySealer(self.keystore, owner, file_id)
        await self.chunks.begin(file_id, self.clock())
        try:
            size, count = await self._write(sealer, content_type, body)
        except BaseException:
            await asyncio.shield(self.chunks.delete(file_id))
            raise
        return StoredContent(file_id, sealer.key_id, content_type, size, count, self.chunk_bytes)

    async def _write(
        self, sealer: _LazySealer, content_type: str, body: AsyncIterable[bytes]
    ) -> tuple[int, int]:
        text = TextValidator() if content_type == "text/plain" else None
        buffer = bytearray()
        size = index = 0
        sniffed = False
        async for piece in body:
            if not piece:
                continue
            size += len(piece)
            if size > self.max_bytes:
                raise FileTooLargeError(self.max_bytes)
            buffer += piece
            if not sniffed and len(buffer) >= SNIFF_BYTES:
                self._check_signature(content_type, bytes(buffer[:SNIFF_BYTES]))
                sniffed = True
            while len(buffer) > self.chunk_bytes:
                chunk = bytes(buffer[: self.chunk_bytes])
                del buffer[: self.chunk_bytes]
                self._check_text(text, content_type, chunk)
                await self.chunks.put(await sealer.seal(index, chunk, final=False))
                index += 1
        if size == 0:
            raise FileEmptyError()
        last = bytes(buffer)
        if not sniffed:
            self._check_signature(content_type, last)
        self._check_text(text, content_type, last)
        if text is not None and not text.finish():
            raise ContentMismatchError(content_type)
        await self.chunks.put(await sealer.seal(index, last, final=True))
        return size, index + 1

    @staticmethod
    def _check_signature(content_type: str, head: bytes) -> None:
        if not signature_matches(content_type, head):
            raise ContentMismatchError(content_type)

    @staticmethod
    def _check_text(text: TextValidator | None, content_type: str, chunk: bytes) -> None:
        if text is not None and not text.feed(chunk):
            raise ContentMismatchError(content_type)

    async def open(
        self, *, file_id: str, owner: str, key_id: str, chunks: int
    ) -> AsyncIterator[bytes]:
        """The decrypted content as a stream; `FileErasedError` at once if the key is gone."""
        key = await self.keystore.key_for_read(owner, key_id)
        if key is None:
            raise FileErasedError()
        return self._read(ChunkCipher(key, file_id), file_id, chunks)

    async def _read(self, cipher: ChunkCipher, file_id: str, count: int) -> AsyncIterator[bytes]:
        for start in range(0, count, self.read_window):
            wanted = list(range(start, min(start + self.read_window, count)))
            found = await self.chunks.read(file_id, wanted)
            if [c.index for c in found] != wanted:
                raise FileContentCorruptError(file_id, "chunks are missing")
            for chunk in found:
                yield cipher.open(chunk, expected_index=chunk.index, final=chunk.index == count - 1)
            del found

    async def delete(self, file_id: str) -> int:
        return await self.chunks.delete(file_id)


class _LazySealer:
    """A `ChunkCipher` whose key is fetched when the first chunk is sealed."""

    def __init__(self, keystore: Keystore, owner: str, file_id: str) -> None:
        self.keystore, self.owner, self.file_id = keystore, owner, file_id
        self._cipher: ChunkCipher | None = None
        self.key_id = ""

    async def seal(self, index: int, plaintext: bytes, *, final: bool) -> StoredChunk:
        if self._cipher is None:
            key = await self.keystore.key_for_write(self.owner)
            self._cipher, self.key_id = ChunkCipher(key, self.file_id), key.key_id
        return self._cipher.seal(index, plaintext, final=final)

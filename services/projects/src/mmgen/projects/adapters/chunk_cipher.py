"""Sealing of file chunks: AES-256-GCM under the uploader's data key, one fresh nonce per chunk.

The associated data binds each chunk to its place: the file id, the chunk's index and whether
it is the last one. So a chunk moved to another file or another position, chunks swapped, or a
file cut short after any chunk (even with its metadata edited to match) all fail
authentication when read, instead of yielding another plausible file.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mmgen.events.keys import NONCE_BYTES, DataKey
from mmgen.projects.adapters.ports import StoredChunk
from mmgen.projects.domain.errors import FileContentCorruptError

_AAD_PREFIX = b"mmgen-projects-file-chunk|v1|"
TAG_BYTES = 16


def chunk_aad(file_id: str, index: int, final: bool) -> bytes:
    """What a chunk's tag authenticates besides its bytes: file, position, end of file."""
    return _AAD_PREFIX + file_id.encode() + b"|" + struct.pack(">Q?", index, final)


class ChunkCipher:
    """Seals and opens the chunks of one file with one data key."""

    def __init__(self, key: DataKey, file_id: str) -> None:
        self._aead = AESGCM(key.key)
        self.file_id = file_id

    def seal(self, index: int, plaintext: bytes, *, final: bool) -> StoredChunk:
        nonce = os.urandom(NONCE_BYTES)
        data = self._aead.encrypt(nonce, plaintext, chunk_aad(self.file_id, index, final))
        return StoredChunk(self.file_id, index, nonce, data)

    def open(self, chunk: StoredChunk, *, expected_index: int, final: bool) -> bytes:
        """The chunk's plaintext, if it is this file's chunk `expected_index` (and the last
        one exactly when `final`); else `FileContentCorruptError`."""
        if chunk.file_id != self.file_id or chunk.index != expected_index:
            raise FileContentCorruptError(self.file_id, f"chunk {expected_index} is out of place")
        try:
            return self._aead.decrypt(
                chunk.nonce, chunk.data, chunk_aad(self.file_id, expected_index, final)
            )
        except InvalidTag:
            raise FileContentCorruptError(
                self.file_id, f"chunk {expected_index} fails authentication"
            ) from None

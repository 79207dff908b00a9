"""Chunk sealing: a chunk opens only as its own file's chunk, at its own place, with the
right end-of-file flag — so reordering, moving and truncation are all detected."""

from __future__ import annotations

import pytest

from mmgen.events.keys import new_data_key
from mmgen.projects.adapters.chunk_cipher import ChunkCipher, chunk_aad
from mmgen.projects.adapters.ports import StoredChunk
from mmgen.projects.domain.errors import FileContentCorruptError

KEY = new_data_key("subject:u1")


def sealed(file_id: str = "f1") -> tuple[ChunkCipher, list[StoredChunk]]:
    cipher = ChunkCipher(KEY, file_id)
    parts = [b"first part", b"second part", b"third"]
    return cipher, [cipher.seal(i, part, final=i == len(parts) - 1) for i, part in enumerate(parts)]


def test_round_trip() -> None:
    cipher, chunks = sealed()
    opened = [cipher.open(c, expected_index=c.index, final=c.index == 2) for c in chunks]
    assert b"".join(opened) == b"first partsecond partthird"


def test_ciphertext_hides_the_plaintext_and_each_nonce_is_fresh() -> None:
    _, chunks = sealed()
    assert all(b"part" not in c.data for c in chunks)
    assert len({c.nonce for c in chunks}) == len(chunks)


def test_chunks_swapped_do_not_open() -> None:
    cipher, chunks = sealed()
    swapped = StoredChunk("f1", 0, chunks[1].nonce, chunks[1].data)
    with pytest.raises(FileContentCorruptError, match="fails authentication"):
        cipher.open(swapped, expected_index=0, final=False)


def test_a_file_cut_short_fails_at_its_new_last_chunk() -> None:
    cipher, chunks = sealed()
    # Drop the last chunk and pretend the file has two: chunk 1 was not sealed as final.
    with pytest.raises(FileContentCorruptError):
        cipher.open(chunks[1], expected_index=1, final=True)


def test_a_final_chunk_read_as_a_middle_one_fails() -> None:
    cipher, chunks = sealed()
    with pytest.raises(FileContentCorruptError):
        cipher.open(chunks[2], expected_index=2, final=False)


def test_a_chunk_moved_to_another_file_does_not_open() -> None:
    _, chunks = sealed("f1")
    other = ChunkCipher(KEY, "f2")
    moved = StoredChunk("f2", 0, chunks[0].nonce, chunks[0].data)
    with pytest.raises(FileContentCorruptError):
        other.open(moved, expected_index=0, final=False)


def test_a_chunk_out_of_place_is_refused_before_decryption() -> None:
    cipher, chunks = sealed()
    with pytest.raises(FileContentCorruptError, match="out of place"):
        cipher.open(chunks[0], expected_index=1, final=False)


def test_tampered_bytes_do_not_open() -> None:
    cipher, chunks = sealed()
    flipped = bytes([chunks[0].data[0] ^ 1]) + chunks[0].data[1:]
    with pytest.raises(FileContentCorruptError):
        cipher.open(StoredChunk("f1", 0, chunks[0].nonce, flipped), expected_index=0, final=False)


def test_another_key_does_not_open() -> None:
    _, chunks = sealed()
    stranger = ChunkCipher(new_data_key("subject:u2"), "f1")
    with pytest.raises(FileContentCorruptError):
        stranger.open(chunks[0], expected_index=0, final=False)


def test_the_associated_data_names_file_index_and_end() -> None:
    assert chunk_aad("f", 1, False) != chunk_aad("f", 1, True)
    assert chunk_aad("f", 1, False) != chunk_aad("f", 2, False)
    assert chunk_aad("f1", 1, False) != chunk_aad("f", 11, False)

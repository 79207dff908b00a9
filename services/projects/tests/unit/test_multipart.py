"""The streaming multipart reader: the file part's bytes come out exactly, however the body
is cut into pieces, with bounded look-ahead; malformed bodies are refused."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from mmgen.projects.entrypoints.api.multipart import (
    MultipartInvalidError,
    boundary_of,
    read_file_part,
)
from mmgen.projects.testing import collect

BOUNDARY = "----mmgenBoundary7MA4YWxkTrZu0gW"
CT = f"multipart/form-data; boundary={BOUNDARY}"


def body(data: bytes, *, filename: str = "brief.png", before: bytes = b"") -> bytes:
    b = BOUNDARY.encode()
    return (
        b"preamble to ignore\r\n"
        + before
        + b"--" + b + b"\r\n"
        + b'Content-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
        + b"Content-Type: image/png\r\n\r\n"
        + data
        + b"\r\n--" + b + b"--\r\n"
    )  # fmt: skip


async def split(raw: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 41, 42, 43, 1000, 1 << 20])
async def test_the_file_comes_out_exactly_whatever_the_pieces(size: int) -> None:
    # Data that nearly contains the delimiter, and crosses piece edges everywhere.
    data = b"\r\n--" + BOUNDARY[:-1].encode() + b"x" + os.urandom(3000) + b"\r\n-"
    part = await read_file_part(CT, split(body(data), size))
    assert (part.filename, part.content_type) == ("brief.png", "image/png")
    assert await collect(part.data) == data


async def test_fields_before_the_file_are_skipped() -> None:
    field = (
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
    )
    part = await read_file_part(CT, split(body(b"DATA", before=field), 5))
    assert await collect(part.data) == b"DATA"


async def test_quoted_names_and_empty_files() -> None:
    part = await read_file_part(CT, split(body(b"", filename='a \\"b\\".png'), 9))
    assert part.filename == 'a "b".png'
    assert await collect(part.data) == b""


async def test_memory_stays_one_piece_plus_the_delimiter() -> None:
    reader_sizes: list[int] = []

    async def big() -> AsyncIterator[bytes]:
        raw = body(os.urandom(5 * 1024 * 1024))
        for start in range(0, len(raw), 65536):
            yield raw[start : start + 65536]

    part = await read_file_part(CT, big())
    async for piece in part.data:
        reader_sizes.append(len(piece))
    assert max(reader_sizes) <= 65536 + len(BOUNDARY) + 4
    assert sum(reader_sizes) == 5 * 1024 * 1024


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "x" * 71,
    ],
)
def test_a_content_type_without_a_valid_boundary_is_refused(content_type: str) -> None:
    with pytest.raises(MultipartInvalidError):
        boundary_of(content_type)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"--" + BOUNDARY.encode() + b"--\r\n",  # no part at all
        b"--" + BOUNDARY.encode() + b"\r\nno colon here\r\n\r\nx\r\n",
        b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a"\r\n\r\ntruncated file without its closing boundary',
        b"--" + BOUNDARY.encode() + b"\r\n" + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    ],
)
async def test_malformed_bodies_are_refused(raw: bytes) -> None:
    async def whole_file() -> bytes:
        part = await read_file_part(CT, split(raw, 100))
        return await collect(part.data)

    with pytest.raises(MultipartInvalidError):
        await whole_file()

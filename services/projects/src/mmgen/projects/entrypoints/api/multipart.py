"""A streaming reader of the file part of a `multipart/form-data` upload.

Starlette's form parsing spools uploads to temporary files — plaintext on a disk — and
needs a package this service does not otherwise use. This reader hands the file part's bytes
on as they arrive: its memory is one received piece plus the boundary's length, whatever the
file's size, so the use case can check, seal and store the content chunk by chunk.

The upload carries one file part (field `file`); other fields before it are skipped within
a bounded size, anything after it is left unread. A malformed body is a 400.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from mmgen.platform.errors import BadRequestError

FILE_FIELD = "file"
#: Most bytes of one part's headers, and of the fields skipped before the file.
MAX_HEADER_BYTES = 16 * 1024
MAX_SKIPPED_BYTES = 64 * 1024
#: RFC 2046: a boundary is 1..70 characters of a restricted set.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


class MultipartInvalidError(BadRequestError):
    slug = "multipart-invalid"
    title = "Malformed multipart body"


@dataclass(frozen=True)
class FilePart:
    """The file part: its declared name and type, and its bytes as they arrive."""

    filename: str | None
    content_type: str
    data: AsyncIterator[bytes]


def boundary_of(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data` content type (400 if there is none)."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        raise MultipartInvalidError("the upload must be multipart/form-data")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
            if _BOUNDARY.match(boundary):
                return boundary.encode("ascii")
    raise MultipartInvalidError("the multipart content type names no valid boundary")


def _parameters(header: str) -> dict[str, str]:
    """`form-data; name="file"; filename="a b.png"` → `{"name": "file", "filename": ...}`."""
    found: dict[str, str] = {}
    for match in re.finditer(r';\s*([A-Za-z0-9_*-]+)=("((?:[^"\\]|\\.)*)"|[^;\s]*)', header):
        value = match.group(3) if match.group(3) is not None else match.group(2)
        found[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return found


class _Reader:
    """Bytes of the body with a look-ahead buffer."""

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self._body = aiter(body)
        self.buffer = bytearray()
        self.ended = False

    async def fill(self) -> bool:
        """Append the next received piece; False at the end of the body."""
        if self.ended:
            return False
        try:
            piece = await anext(self._body)
        except StopAsyncIteration:
            self.ended = True
            return False
        self.buffer += piece
        return True

    async def until(self, marker: bytes, limit: int) -> bytes:
        """Everything before `marker` (consumed with it); at most `limit` bytes."""
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                found = bytes(self.buffer[:at])
                del self.buffer[: at + len(marker)]
                return found
            if len(self.buffer) > limit + len(marker):
                raise MultipartInvalidError("a multipart part's headers are too long")
            if not await self.fill():
                raise MultipartInvalidError("the multipart body ends early")


async def read_file_part(content_type: str, body: AsyncIterable[bytes]) -> FilePart:
    """Find the `file` part and return it with a stream of its bytes."""
    boundary = boundary_of(content_type)
    reader = _Reader(body)
    delimiter = b"--" + boundary
    await reader.until(delimiter, MAX_SKIPPED_BYTES)  # the preamble
    skipped = 0
    while True:
        after = await reader.until(b"\r\n", 2)
        if after == b"--":
            raise MultipartInvalidError(f"the upload has no {FILE_FIELD!r} part")
        if after:
            raise MultipartInvalidError("a multipart boundary is followed by junk")
        headers = _headers(await reader.until(b"\r\n\r\n", MAX_HEADER_BYTES))
        disposition = _parameters(headers.get("content-disposition", ""))
        if disposition.get("name") == FILE_FIELD and "filename" in disposition:
            return FilePart(
                filename=disposition.get("filename") or None,
                content_type=headers.get("content-type", "application/octet-stream"),
                data=_part_data(reader, b"\r\n" + delimiter),
            )
        skipped += len(await reader.until(b"\r\n" + delimiter, MAX_SKIPPED_BYTES - skipped))


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartInvalidError("a multipart part header is malformed")
        headers[name.strip().lower()] = value.strip()
    return headers


async def _part_data(reader: _Reader, delimiter: bytes) -> AsyncIterator[bytes]:
    """The part's bytes up to the delimiter; the look-ahead keeps one delimiter's length."""
    keep = len(delimiter) - 1
    while True:
        at = reader.buffer.find(delimiter)
        if at >= 0:
            if at:
                yield bytes(reader.buffer[:at])
            del reader.buffer[: at + len(delimiter)]
            return  # what follows (the closing boundary, an epilogue) is not read
        if len(reader.buffer) > keep:
            cut = len(reader.buffer) - keep
            yield bytes(reader.buffer[:cut])
            del reader.buffer[:cut]
        if not await reader.fill():
            raise MultipartInvalidError("the multipart body ends inside the file")

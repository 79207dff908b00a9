"""Content types the service accepts, checked against the bytes' own signature (magic numbers).

A client's declared `Content-Type` is a claim; the file's first bytes are evidence. An upload is
accepted only when its bytes carry the signature of the type it declares, so a script renamed
`photo.png` is refused (415) before anything is stored. Plain text has no signature: it is
accepted only while every byte of it is UTF-8 text without control characters, which
`TextValidator` checks incrementally over the whole stream, not just the head.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

#: How many leading bytes the signature checks need (the first chunk always has them, or
#: the whole file when it is shorter).
SNIFF_BYTES = 16

#: ISO base media brands of MP4 files (`ftyp` major brand). QuickTime (`qt  `) and HEIF
#: (`heic`, `mif1`) share the box layout but are other formats.
MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"dash",
        b"mmp4",
        b"MSNV",
    }
)
#: Control characters plain text may not contain (tab, line feed, form feed and carriage
#: return are allowed).
_TEXT_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TEXT_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})


def _png(head: bytes) -> bool:
    return head.startswith(b"\x89PNG\r\n\x1a\n")


def _jpeg(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


def _gif(head: bytes) -> bool:
    return head.startswith((b"GIF87a", b"GIF89a"))


def _webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _pdf(head: bytes) -> bool:
    return head.startswith(b"%PDF-")


def _mp4(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS


def _text(head: bytes) -> bool:
    """The head is text (the rest of the stream is checked by `TextValidator`)."""
    validator = TextValidator()
    return validator.feed(head)


#: Content type → check of the file's leading bytes.
SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "image/png": _png,
    "image/jpeg": _jpeg,
    "image/gif": _gif,
    "image/webp": _webp,
    "application/pdf": _pdf,
    "video/mp4": _mp4,
    "text/plain": _text,
}


def normalise_content_type(raw: str) -> str:
    """`Text/Plain; charset=UTF-8` → `text/plain` (parameters dropped, lower case)."""
    return raw.split(";", 1)[0].strip().lower()


def charset_of(raw: str) -> str | None:
    """The `charset` parameter of a content type, lower case, if any."""
    for param in raw.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def declared_type_acceptable(raw: str, allowed: frozenset[str] | tuple[str, ...]) -> str | None:
    """The normalised type if it is allowed (text only as UTF-8/ASCII), else None."""
    content_type = normalise_content_type(raw)
    if content_type not in allowed or content_type not in SIGNATURES:
        return None
    if content_type == "text/plain":
        charset = charset_of(raw)
        if charset is not None and charset not in _TEXT_CHARSETS:
            return None
    return content_type


def signature_matches(content_type: str, head: bytes) -> bool:
    """True when `head` (the file's first bytes) carries the signature of `content_type`."""
    check = SIGNATURES.get(content_type)
    return check is not None and check(head)


class TextValidator:
    """Checks a byte stream, piece by piece, for being UTF-8 text without control characters.

    Pieces may split a multi-byte character anywhere; the incremental decoder carries it over.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.valid = True

    def feed(self, piece: bytes) -> bool:
        if not self.valid:
            return False
        if _TEXT_FORBIDDEN.search(piece) is not None:
            self.valid = False
            return False
        try:
            self._decoder.decode(piece, final=False)
        except UnicodeDecodeError:
            self.valid = False
        return self.valid

    def finish(self) -> bool:
        """True when the whole stream was text (a character cut off at the end is not)."""
        if not self.valid:
            return False
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self.valid = False
        return self.valid

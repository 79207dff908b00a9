"""Rules about uploaded files that need no I/O: what a stored file name may be."""

from __future__ import annotations

import re
import unicodedata

MAX_FILENAME_LENGTH = 255
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
DEFAULT_FILENAME = "file"


def safe_filename(raw: str | None) -> str:
    """The last path component, NFC, without control characters, at most 255 characters.

    A name is only ever shown back (and put in `Content-Disposition`); it never names a path
    on a disk, but a client's `../../x` or `C:\\x` still has no business being stored.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _CONTROLS.sub("", name).strip().strip(".")
    return name[:MAX_FILENAME_LENGTH] or DEFAULT_FILENAME

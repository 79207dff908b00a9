"""Reading page positions back: a position is only trusted to be a dict, never its contents."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from mmgen.projects.domain.errors import CursorInvalidError

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def before_number(position: Mapping[str, Any] | None, *, last: int) -> int:
    """Where a newest-first page starts: `before` from the cursor (1..last+1), else last+1."""
    if position is None:
        return last + 1
    value = position.get("before")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= last + 1:
        raise CursorInvalidError()
    return value


def before_id(position: Mapping[str, Any] | None) -> str | None:
    """A project id to list below (ids are time-ordered UUIDv7s), or None for the top."""
    if position is None:
        return None
    value = position.get("before")
    if not isinstance(value, str) or not _UUID.match(value):
        raise CursorInvalidError()
    return str(uuid.UUID(value))


def numbers_below(before: int, limit: int) -> list[int]:
    """The numbers of one newest-first page: `before - 1` down, at most `limit` of them."""
    top = before - 1
    return list(range(top, max(0, top - limit), -1))

"""Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.

A cursor is the position after the last item returned (for example `{"after": "<id>"}`),
serialised as base64url JSON: opaque to clients, never an offset (offset pagination re-reads
everything skipped, which the database does not do cheaply — INFRA.md). Queries should read a
bounded range from the cursor's position, asking for `limit + 1` to know whether more follow.
Cursors are not signed: one only moves a position within what the caller may already read.
"""

# No `from __future__ import annotations`: FastAPI must see the Query bounds of the closure
# below as real objects, not as strings naming local variables.
import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from mmgen.platform.errors import BadRequestError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 1024


class InvalidCursorError(BadRequestError):
    slug = "invalid-cursor"
    title = "Invalid cursor"


def encode_cursor(position: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(position), separators=(",", ":"), sort_keys=True, default=str)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> dict[str, Any]:
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("the cursor is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("the cursor is not one this service issued") from exc
    if not isinstance(position, dict):
        raise InvalidCursorError("the cursor is not one this service issued")
    return position


class CursorPage(BaseModel, Generic[T]):
    """The response shape of every paginated list."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    position: dict[str, Any] | None

    def page(
        self, fetched: Sequence[T], position_of: Callable[[T], Mapping[str, Any]]
    ) -> CursorPage[T]:
        """A page from up to `limit + 1` fetched items; the extra one only signals "more"."""
        items = list(fetched[: self.limit])
        more = len(fetched) > self.limit
        next_cursor = encode_cursor(position_of(items[-1])) if more and items else None
        return CursorPage[T](items=items, next_cursor=next_cursor)


def pagination(
    *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT
) -> Callable[..., PageRequest]:
    """Dependency factory reading `limit` (1..max_limit) and `cursor` from the query."""

    def dependency(
        limit: Annotated[int, Query(ge=1, le=max_limit, description="Page size")] = default_limit,
        cursor: Annotated[
            str | None,
            Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page"),
        ] = None,
    ) -> PageRequest:
        return PageRequest(limit=limit, position=decode_cursor(cursor) if cursor else None)

    return dependency


#: The default page parameters (limit 1..200, default 50).
Page = Annotated[PageRequest, Depends(pagination())]

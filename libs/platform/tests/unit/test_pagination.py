"""Cursor pagination: opaque base64url cursors, validated on the way back in."""

from __future__ import annotations

import base64

import pytest

from mmgen.platform import InvalidCursorError, PageRequest, decode_cursor, encode_cursor


def test_cursor_round_trips_and_is_url_safe() -> None:
    position = {"after": "0193-abc/def+x", "seq": 41}
    cursor = encode_cursor(position)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "bm90IGpzb24",  # "not json"
        base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("="),  # JSON, not an object
        "x" * 2000,
    ],
)
def test_foreign_cursors_are_bad_requests(cursor: str) -> None:
    with pytest.raises(InvalidCursorError) as info:
        decode_cursor(cursor)
    assert info.value.status == 400
    assert info.value.type == "urn:mmgen:problem:invalid-cursor"


def test_page_uses_the_extra_item_only_to_signal_more() -> None:
    request = PageRequest(limit=3, position=None)
    page = request.page([10, 11, 12, 13], lambda n: {"after": n})
    assert page.items == [10, 11, 12]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == {"after": 12}

    last = request.page([14, 15], lambda n: {"after": n})
    assert last.items == [14, 15]
    assert last.next_cursor is None

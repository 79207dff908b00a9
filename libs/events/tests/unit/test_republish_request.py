"""Republish requests: the wire form, and holes wider than one request asked for in chunks."""

from __future__ import annotations

import pytest

from mmgen.events.republish import MAX_RANGE, RepublishRequest, RepublishRequestInvalidError


def test_a_wide_hole_is_cut_into_requests_of_at_most_max_range() -> None:
    requests = RepublishRequest.chunked("identity", 5, 5 + 2 * MAX_RANGE + 2)
    assert [(r.from_seq, r.to_seq) for r in requests] == [
        (5, 4 + MAX_RANGE),
        (5 + MAX_RANGE, 4 + 2 * MAX_RANGE),
        (5 + 2 * MAX_RANGE, 7 + 2 * MAX_RANGE),
    ]
    assert all(r.to_seq - r.from_seq + 1 <= MAX_RANGE for r in requests)


def test_a_small_hole_is_one_request_and_round_trips() -> None:
    [request] = RepublishRequest.chunked("consent", 3, 3, requested_by="audit")
    back = RepublishRequest.from_wire(request.to_wire())
    assert (back.producer, back.from_seq, back.to_seq, back.requested_by) == (
        "consent",
        3,
        3,
        "audit",
    )
    assert back.request_id  # the wire form always names the request


def test_one_request_over_max_range_is_refused() -> None:
    with pytest.raises(RepublishRequestInvalidError):
        RepublishRequest("identity", 1, MAX_RANGE + 1)

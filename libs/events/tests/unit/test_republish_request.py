"""Republish requests: the wire form, and holes wider than one request asked for in chunks."""

from __future__ import annotations

import pytest

from mmgen.events.republish import (
    AUDIT_LOG_PRODUCER,
    MAX_RANGE,
    RepublishRequest,
    RepublishRequestInvalidError,
    first_seq_of,
)


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


def test_the_audit_log_may_be_asked_from_seq_0_and_services_may_not() -> None:
    """The audit log numbers its entries from 0, services their events from 1: seq 0 is a valid
    request for the audit log only, and the audit log's numbers are never negative."""
    request = RepublishRequest(AUDIT_LOG_PRODUCER, 0, 4, requested_by="retention")
    back = RepublishRequest.from_wire(request.to_wire())
    assert (back.producer, back.from_seq, back.to_seq) == (AUDIT_LOG_PRODUCER, 0, 4)
    with pytest.raises(RepublishRequestInvalidError):
        RepublishRequest("identity", 0, 4)
    with pytest.raises(RepublishRequestInvalidError):
        RepublishRequest(AUDIT_LOG_PRODUCER, -1, 4)
    with pytest.raises(RepublishRequestInvalidError):
        RepublishRequest(AUDIT_LOG_PRODUCER, 5, 4)
    assert (first_seq_of(AUDIT_LOG_PRODUCER), first_seq_of("consent")) == (0, 1)

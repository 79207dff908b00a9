"""The API bodies: input limits, and request views rendered as responses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mmgen.retention.entrypoints.api.schemas import (
    ExtensionIn,
    HoldIn,
    PolicyIn,
    PrivacyRequestIn,
    PrivacyRequestOut,
)

from ..harness import SERVICES, Harness, subject_actor


@pytest.mark.parametrize(
    "body",
    [
        {"type": "erasure", "role": "admin"},  # unknown field
        {"type": "deletion"},
        {"type": "rectification"},  # says nothing about what is wrong
        {"type": "rectification", "details": "   "},
        {"type": "access", "details": "x" * 4001},
        {"type": "access", "subject_id": "not-a-uuid"},
    ],
)
def test_privacy_request_bodies_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PrivacyRequestIn.model_validate(body)


def test_other_bodies() -> None:
    assert ExtensionIn.model_validate({"months": 2}).reason is None  # the domain refuses it
    with pytest.raises(ValidationError):
        ExtensionIn.model_validate({"months": 3, "reason": "x"})
    with pytest.raises(ValidationError):
        HoldIn.model_validate(
            {
                "subject_id": str(uuid.uuid4()),
                "categories": ["Payment!"],
                "legal_basis": "tax",
                "owner": "finance",
            }
        )
    with pytest.raises(ValidationError):  # a naive end date is ambiguous
        HoldIn.model_validate(
            {
                "subject_id": str(uuid.uuid4()),
                "categories": ["payment"],
                "legal_basis": "tax",
                "owner": "finance",
                "until": "2030-01-01T00:00:00",
            }
        )
    assert PolicyIn.model_validate(
        {
            "category": "usage",
            "trigger_event": "subject.inactive",
            "period": "P13M",
            "action": "erase",
            "legal_basis": "b",
        }
    )


async def test_a_request_view_renders_as_its_response(h: Harness) -> None:
    sid = str(uuid.uuid4())
    view, _ = await h.requests.submit(
        request_type="erasure", subject_id=sid, actor=subject_actor(sid)
    )
    (command,) = h.publisher.sent
    await h.answer(command, "identity")
    out = PrivacyRequestOut.of(await h.requests.get(view["_id"]), h.clock.now())
    assert out.status == "in_progress"
    assert out.deadline.due_on.isoformat() == "2027-02-28" and not out.deadline.overdue
    assert out.expected_services == list(SERVICES)
    assert list(out.acknowledgements) == ["identity"]
    assert {p.service: p.state for p in out.progress}["identity"] == "clean"
    late = PrivacyRequestOut.of(await h.requests.get(view["_id"]), datetime(2027, 3, 1, tzinfo=UTC))
    assert late.deadline.overdue

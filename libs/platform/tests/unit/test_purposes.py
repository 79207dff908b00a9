"""`accepts_purposes`: who must declare a purpose, which ones a route takes, what is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from mmgen.platform.auth import (
    PURPOSE_REQUIRED_ROLES,
    Principal,
    ProcessingPurpose,
    PurposeNotAllowedError,
    PurposeRequiredError,
    PurposeUnknownError,
    Role,
    accepts_purposes,
)

SUPPORT, LEGAL = ProcessingPurpose.support, ProcessingPurpose.legal_compliance
check = accepts_purposes(SUPPORT, "legal_compliance")


def _request() -> Request:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    return Request(scope)


def _who(role: Role) -> Principal:
    return Principal(subject_id="0195f3a0-0000-7000-8000-000000000001", role=role)


@pytest.mark.parametrize("role", sorted(PURPOSE_REQUIRED_ROLES))
@pytest.mark.parametrize("header", [None, "", "   "])
async def test_privileged_roles_must_declare_one(role: Role, header: str | None) -> None:
    request = _request()
    with pytest.raises(PurposeRequiredError) as refused:
        await check(request, _who(role), header)
    assert refused.value.extensions["allowed_purposes"] == ["legal_compliance", "support"]
    assert request.state.purpose is None


@pytest.mark.parametrize("role", [Role.client, Role.creator, Role.service])
async def test_others_may_declare_none(role: Role) -> None:
    request = _request()
    assert await check(request, _who(role), None) is None
    assert request.state.purpose is None


@pytest.mark.parametrize("role", list(Role))
async def test_an_accepted_purpose_is_returned_and_kept_for_the_audit(role: Role) -> None:
    request = _request()
    assert await check(request, _who(role), " legal_compliance ") is LEGAL
    assert request.state.purpose is LEGAL


@pytest.mark.parametrize("role", list(Role))
async def test_a_known_purpose_the_route_does_not_accept_is_refused(role: Role) -> None:
    request = _request()
    with pytest.raises(PurposeNotAllowedError) as refused:
        await check(request, _who(role), "payment_processing")
    assert refused.value.status == 403
    assert refused.value.extensions["allowed_purposes"] == ["legal_compliance", "support"]
    assert "payment_processing" in str(refused.value.detail)
    # The refusal is audited with what was declared.
    assert request.state.purpose is ProcessingPurpose.payment_processing


async def test_an_unknown_purpose_is_refused_naming_the_routes_purposes() -> None:
    with pytest.raises(PurposeUnknownError) as refused:
        await check(_request(), _who(Role.client), "curiosity")
    assert refused.value.extensions["allowed_purposes"] == ["legal_compliance", "support"]


def test_a_route_names_at_least_one_known_purpose() -> None:
    with pytest.raises(ValueError, match="at least one"):
        accepts_purposes()
    with pytest.raises(ValueError, match="marketing"):
        accepts_purposes("marketing")


def test_a_purpose_named_twice_counts_once() -> None:
    assert accepts_purposes(SUPPORT, SUPPORT, LEGAL).__name__ == (
        "accepts_purposes_support_legal_compliance"
    )

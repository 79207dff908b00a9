"""The allowance table: which services a token of each role may name, and what is refused."""

from __future__ import annotations

import pytest

from mmgen.platform.auth.audiences import (
    ROLE_AUDIENCES,
    SERVICE_AUDIENCES,
    AudienceNotAllowedError,
    allowed_audiences,
    audiences_for,
)
from mmgen.platform.auth.principal import Role

PLATFORM = ["identity", "projects", "profiles", "consent", "retention"]


def test_every_role_has_an_allowance_within_the_known_services() -> None:
    assert set(ROLE_AUDIENCES) == set(Role)
    for allowance in ROLE_AUDIENCES.values():
        assert allowance and allowance <= set(SERVICE_AUDIENCES)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("client", PLATFORM),
        ("creator", PLATFORM),
        ("staff", PLATFORM),
        ("admin", PLATFORM),
        ("service", PLATFORM),
        ("compliance", [*PLATFORM, "console"]),
    ],
)
def test_by_default_a_token_names_every_service_its_role_may_use(
    role: str, expected: list[str]
) -> None:
    assert allowed_audiences(role) == tuple(expected)
    assert audiences_for(role) == expected


def test_the_services_asked_are_kept_in_order_without_duplicates() -> None:
    assert audiences_for("client", ["projects"]) == ["projects"]
    assert audiences_for("compliance", ["console", "consent", "console"]) == ["console", "consent"]


@pytest.mark.parametrize(
    ("role", "asked", "refused"),
    [
        ("client", ["console"], ("console",)),
        ("staff", ["projects", "console"], ("console",)),
        ("admin", ["console"], ("console",)),
        ("service", ["console"], ("console",)),
        ("client", ["witness", "billing"], ("billing", "witness")),
        ("client", [], ()),
    ],
)
def test_an_audience_outside_the_allowance_is_refused(
    role: str, asked: list[str], refused: tuple[str, ...]
) -> None:
    with pytest.raises(AudienceNotAllowedError) as info:
        audiences_for(role, asked)
    assert info.value.refused == refused
    assert info.value.role == role
    assert "allowed: identity, projects" in str(info.value)


def test_an_unknown_role_may_hold_no_audience() -> None:
    assert allowed_audiences("wizard") == ()
    with pytest.raises(AudienceNotAllowedError):
        audiences_for("wizard")
    with pytest.raises(AudienceNotAllowedError):
        audiences_for("wizard", ["projects"])

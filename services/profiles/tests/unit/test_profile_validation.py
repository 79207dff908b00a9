"""The profile's rules: what a creator may submit, and that refusals name fields, never values."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from mmgen.profiles.domain.errors import ProfileInvalidError
from mmgen.profiles.domain.model import CreatorProfile
from mmgen.profiles.domain.profile import (
    MAX_PORTFOLIO,
    MAX_SKILLS,
    ProfileDetails,
    SensitiveDetails,
    date_problems,
    exposure_problems,
)

from ..conftest import TODAY, creator_actor, details, new_id, sensitive


def locations(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in e["loc"]) for e in error.errors()}


def test_a_complete_profile_is_accepted() -> None:
    profile = details()
    assert profile.display_name == "Mia Laurent"
    assert profile.experience[0].from_ == date(2021, 3, 1)
    assert profile.model_dump(mode="json")["experience"][0]["from"] == "2021-03-01"
    secret = sensitive()
    assert secret.filled_fields() == [
        "phone",
        "email",
        "date_of_birth",
        "address",
        "measurements",
    ]


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "x" * 81}, "display_name"),
        ({"display_name": "Mia\nLaurent"}, "display_name"),
        ({"category": "influencer"}, "category"),
        ({"bio": "x" * 2001}, "bio"),
        ({"bio": "bell\x07"}, "bio"),
        ({"skills": ["s"] * 2 + [f"skill {i}" for i in range(MAX_SKILLS)]}, "skills"),
        ({"skills": ["x" * 51]}, "skills.0"),
        ({"city": "y" * 101}, "city"),
        ({"languages": ["french"]}, "languages.0"),
        ({"languages": [f"l{i:02d}" for i in range(11)]}, "languages"),
        ({"rates": "1000_a_day"}, "rates"),
        ({"nickname": "M"}, "nickname"),
        (
            {"experience": [{"title": "t", "organisation": "o", "from": "1899-12-31"}]},
            "experience.0.from",
        ),
        ({"experience": [{"title": "t", "organisation": "o"}]}, "experience.0.from"),
        ({"portfolio": [{"title": "t", "url": "http://example.com/a"}]}, "portfolio.0.url"),
        ({"portfolio": [{"title": "t", "url": "javascript:alert(1)"}]}, "portfolio.0.url"),
        ({"portfolio": [{"title": "t", "url": "https://user:pw@example.com/"}]}, "portfolio.0.url"),
        ({"portfolio": [{"title": "t", "url": "https:///nohost"}]}, "portfolio.0.url"),
        ({"portfolio": [{"title": "t", "url": "https://exa mple.com"}]}, "portfolio.0.url"),
        ({"portfolio": [{"title": "t", "file_id": "not-a-uuid"}]}, "portfolio.0.file_id"),
        (
            {"portfolio": [{"title": "t", "url": "https://example.com/", "file_id": new_id()}]},
            "portfolio.0",
        ),
        ({"portfolio": [{"title": "t"}]}, "portfolio.0"),
        (
            {"portfolio": [{"title": f"{i}", "file_id": new_id()} for i in range(51)]},
            "portfolio",
        ),
    ],
)
def test_invalid_public_details_name_the_field(overrides: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        details(**overrides)
    assert any(loc == where or loc.startswith(where) for loc in locations(caught.value)), locations(
        caught.value
    )


def test_skills_are_distinct_ignoring_case_and_accents() -> None:
    with pytest.raises(ValidationError, match="skills must be distinct"):
        details(skills=["Défilé", "DEFILE"])


def test_experience_from_must_not_follow_to() -> None:
    with pytest.raises(ValidationError, match="'from' must not be after 'to'"):
        details(
            experience=[
                {"title": "t", "organisation": "o", "from": "2022-01-01", "to": "2021-01-01"}
            ]
        )


def test_https_links_and_own_files_are_accepted() -> None:
    profile = details(
        portfolio=[
            {"title": "Site", "url": "https://portfolio.example.com:8443/work?x=1"},
            {"title": "Reel", "file_id": new_id().upper(), "description": "line one\nline two"},
        ]
    )
    assert profile.portfolio[1].file_id == profile.portfolio[1].file_id.lower()
    assert len(details(portfolio=[]).portfolio) == 0
    assert MAX_PORTFOLIO == 50


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"phone": "call me"}, "phone"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1234567890123456"}, "phone"),
        ({"email": "mia.example.org"}, "email"),
        ({"email": "mia@localhost"}, "email"),
        ({"date_of_birth": "1850-01-01"}, "date_of_birth"),
        ({"address": ""}, "address"),
        ({"address": "a" * 301}, "address"),
        ({"measurements": {}}, "measurements"),
        ({"measurements": {"height_cm": 400}}, "measurements.height_cm"),
        ({"measurements": {"shoe_size_eu": 39.3}}, "measurements.shoe_size_eu"),
        ({"measurements": {"eye_colour": "green"}}, "measurements.eye_colour"),
        ({"passport": "X123"}, "passport"),
    ],
)
def test_invalid_sensitive_details_name_the_field(overrides: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sensitive(**overrides)
    assert any(loc == where or loc.startswith(where) for loc in locations(caught.value))


def test_sensitive_details_are_all_optional() -> None:
    assert SensitiveDetails().filled_fields() == []
    assert SensitiveDetails(phone="0612345678").filled_fields() == ["phone"]


def test_dates_must_lie_in_the_past() -> None:
    profile = details(
        experience=[{"title": "t", "organisation": "o", "from": "2026-11-01", "to": "2027-01-01"}]
    )
    problems = date_problems(profile, sensitive(date_of_birth="2026-12-01"), TODAY)
    assert [(p.field, p.type) for p in problems] == [
        ("experience.0.to", "date_past"),
        ("sensitive.date_of_birth", "date_past"),
    ]
    assert date_problems(details(), sensitive(), TODAY) == []


def test_the_aggregate_refuses_future_dates_and_records_nothing() -> None:
    creator = new_id()
    profile = CreatorProfile.new(creator)
    with pytest.raises(ProfileInvalidError) as caught:
        profile.put(
            details(),
            sensitive(date_of_birth="2030-01-01"),
            actor=creator_actor(creator),
            today=TODAY,
        )
    assert [p.field for p in caught.value.problems] == ["sensitive.date_of_birth"]
    assert "2030" not in str(caught.value)
    assert profile.pending == []


def test_refusals_never_echo_the_submitted_value() -> None:
    secret_phone = "call 555 0199 maybe"
    with pytest.raises(ValidationError) as caught:
        SensitiveDetails(phone=secret_phone)
    messages = " ".join(e["msg"] for e in caught.value.errors())
    assert secret_phone not in messages


def test_public_and_sensitive_fields_do_not_overlap() -> None:
    assert not set(ProfileDetails.model_fields) & set(SensitiveDetails.model_fields)


def test_a_public_field_may_not_repeat_a_sensitive_value() -> None:
    secret = sensitive()  # +33 6 12 34 56 78, mia.laurent@example.org, 12 rue Victor Hugo...
    public = details(
        bio="Call 06.12.34.56.78 or write to MIA.Laurent@example.org.",
        city="12 Rue Victor-Hugo 69002 Lyon",
        experience=[{"title": "Born 1996-04-17", "organisation": "o", "from": "2021-03-01"}],
        portfolio=[{"title": "Site", "url": "https://example.com/a", "description": "6 12 34"}],
    )
    problems = exposure_problems(public, secret)
    assert [(p.field, p.message.split(",")[0]) for p in problems] == [
        ("bio", "repeats your sensitive email"),
        ("bio", "repeats your sensitive phone"),
        ("city", "repeats your sensitive address"),
        ("experience.0.title", "repeats your sensitive date_of_birth"),
    ]
    assert not any("mia.laurent" in p.message or "12 34" in p.message for p in problems)
    # Parts of a value are not the value: a city, a street name, a short number.
    fine = details(city="Lyon", bio="Studio rue Victor Hugo; 12 shoots a year; 1996 debut.")
    assert exposure_problems(fine, secret) == []
    assert exposure_problems(public, SensitiveDetails()) == []


def test_the_aggregate_refuses_a_sensitive_value_in_public_and_records_nothing() -> None:
    creator = new_id()
    profile = CreatorProfile.new(creator)
    with pytest.raises(ProfileInvalidError) as caught:
        profile.put(
            details(bio="Reach me: +33 6 12 34 56 78"),
            sensitive(),
            actor=creator_actor(creator),
            today=TODAY,
        )
    assert [p.field for p in caught.value.problems] == ["bio"]
    assert profile.pending == []

"""The API models: what a request may carry, and that only the owner's and the reveal's
responses can hold a sensitive field at all."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mmgen.profiles.domain.profile import SENSITIVE_FIELDS
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.entrypoints.api.schemas import (
    BIO_EXCERPT,
    OwnProfileOut,
    ProfileCard,
    ProfileIn,
    ProfileOut,
    SearchPageOut,
    SearchParams,
)
from mmgen.profiles.service_layer.profiles import read_profile

from ..conftest import Profiles, details, new_id, sensitive


def test_a_request_splits_into_public_and_sensitive_parts() -> None:
    body = ProfileIn.model_validate(
        {
            **details().model_dump(mode="json"),
            "sensitive": sensitive().model_dump(mode="json"),
        }
    )
    public, secret = body.parts()
    assert public == details() and secret == sensitive()
    assert ProfileIn.model_validate(details().model_dump(mode="json")).parts()[1].empty


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "admin"},
        {"published": True},
        {"sensitive": {"ssn": "123"}},
        {"portfolio": [{"title": "x", "url": "ftp://example.com/a"}]},
    ],
)
def test_a_request_refuses_what_it_does_not_know(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProfileIn.model_validate({**details().model_dump(mode="json"), **extra})


def test_only_the_owners_view_has_sensitive_fields() -> None:
    assert "sensitive" in OwnProfileOut.model_fields
    for model in (ProfileOut, ProfileCard, SearchPageOut):
        names = set(model.model_fields)
        assert "sensitive" not in names and not names & set(SENSITIVE_FIELDS), model


async def test_responses_from_the_use_cases(parts: Profiles) -> None:
    own = await parts.creator(bio="x" * 600)
    out = OwnProfileOut.of(own)
    assert out.sensitive.phone == "+33 6 12 34 56 78" and out.published
    dumped = out.model_dump(mode="json", by_alias=True)
    assert dumped["experience"][0]["from"] == "2021-03-01"
    read = await read_profile(
        parts.profiles,
        parts.relationships,
        viewer=Viewer(new_id(), "client"),
        creator_id=own.creator_id,
    )
    public = ProfileOut.of(read.profile, can_reveal=read.can_reveal)
    assert "+33" not in public.model_dump_json()
    card = ProfileCard.of(read.profile)
    assert len(card.bio_excerpt) == BIO_EXCERPT + 1 and card.bio_excerpt.endswith("…")
    assert card.portfolio_count == 1 and card.experience_count == 1


@pytest.mark.parametrize(
    "params",
    [
        {"category": "influencer"},
        {"language": "french"},
        {"q": "x" * 201},
        {"skill": ""},
        {"city": "c" * 101},
        {"sort": "birth_date"},
    ],
)
def test_search_parameters_are_bounded(params: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SearchParams.model_validate(params)


def test_search_parameters() -> None:
    params = SearchParams.model_validate({"language": "PT-BR", "q": "runway"})
    assert params.language == "pt-br" and params.q == "runway"

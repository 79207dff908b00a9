"""The API models: what a request may carry; search results cannot hold a sensitive field at
all, and a profile read holds one only when the reveal rule shows it."""

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

from ..conftest import Profiles, consent_event, details, new_id, sensitive


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


def test_search_results_have_no_sensitive_member() -> None:
    for model in (ProfileCard, SearchPageOut):
        names = set(model.model_fields)
        assert "sensitive" not in names and not names & set(SENSITIVE_FIELDS), model
    assert not set(ProfileOut.model_fields) & set(SENSITIVE_FIELDS)


async def test_responses_from_the_use_cases(parts: Profiles) -> None:
    own = await parts.creator(bio="x" * 600)
    out = OwnProfileOut.of(own)
    assert out.sensitive.phone == "+33 6 12 34 56 78" and out.published
    dumped = out.model_dump(mode="json", by_alias=True)
    assert dumped["experience"][0]["from"] == "2021-03-01"
    read = await read_profile(
        parts.profiles,
        parts.relationships,
        parts.repository,
        viewer=Viewer(new_id(), "client"),
        creator_id=own.creator_id,
    )
    public = ProfileOut.of(read)
    assert public.sensitive is None and public.revealed == [] and public.basis is None
    assert "+33" not in public.model_dump_json()
    card = ProfileCard.of(read.profile)
    assert len(card.bio_excerpt) == BIO_EXCERPT + 1 and card.bio_excerpt.endswith("…")
    assert card.portfolio_count == 1 and card.experience_count == 1

    await parts.deliver(consent_event(own.creator_id, granted=True, version=2))
    read = await read_profile(
        parts.profiles,
        parts.relationships,
        parts.repository,
        viewer=Viewer(new_id(), "client"),
        creator_id=own.creator_id,
    )
    shown = ProfileOut.of(read).model_dump(mode="json")
    assert shown["sensitive"]["phone"] == "+33 6 12 34 56 78"
    assert shown["revealed"] == list(SENSITIVE_FIELDS) and shown["basis"] == "consent"


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

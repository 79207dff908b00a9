"""Normalisation, a profile's search tokens, and query plans (pure functions)."""

from __future__ import annotations

import pytest

from mmgen.profiles.domain.errors import SearchQueryInvalidError
from mmgen.profiles.domain.profile import SensitiveDetails
from mmgen.profiles.domain.search import (
    ALL,
    NOTHING,
    Order,
    SearchQuery,
    contact_shaped,
    index_tokens,
    plan,
    text_words,
)
from mmgen.profiles.domain.text import fold, keyword, words

from ..conftest import details, sensitive


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Élodie", "elodie"),
        ("ÉLODIE", "elodie"),
        ("São Paulo", "sao paulo"),
        ("Straße", "strasse"),
        ("ﬁlm", "film"),  # a ligature (compatibility form)
        ("\uff34\uff4f\uff4b\uff59\uff4f", "tokyo"),  # full-width letters
        ("Zoë Ångström", "zoe angstrom"),
    ],
)
def test_fold_drops_accents_and_case(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_words_and_keywords() -> None:
    assert words("Hair & Make-up, Éditorial!") == ["hair", "make", "up", "editorial"]
    assert keyword("  Saint-Étienne ") == "saint etienne"
    text = "mail me: mia@example.org or see https://mia.example.com/x a 1234 123456"
    assert text_words(text) == [
        "mail",
        "me",
        "or",
        "see",
        "1234",
    ]


def test_a_profile_gets_filter_tokens_and_weighted_words() -> None:
    tokens = index_tokens(
        details(display_name="Zoë Ångström", city="São Paulo", languages=["pt-BR", "en"]),
        SensitiveDetails(),
    )
    assert tokens[ALL] == 0
    assert "k:model" in tokens
    assert {"s:runway", "s:editorial", "c:sao paulo", "l:pt-br", "l:pt", "l:en"} <= set(tokens)
    assert {
        "sc:runway@sao paulo",
        "sc:editorial@sao paulo",
        "kc:model@sao paulo",
        "ks:model@runway",
        "ks:model@editorial",
    } <= set(tokens)
    assert tokens["t:zoe"] == 5  # name
    assert tokens["t:runway"] == 4  # a skill (and a word of the experience title)
    assert tokens["t:sao"] == 3  # city
    assert tokens["t:maison"] == 2  # experience organisation
    assert tokens["t:spring"] == 2  # portfolio title
    assert tokens["t:based"] == 1  # bio
    assert not any(t.startswith("t:https") or "example" in t for t in tokens)  # links


def test_sensitive_values_never_become_tokens() -> None:
    secret = sensitive()
    tokens = index_tokens(details(), secret)
    everything = " ".join(tokens)
    for value in ("612345678", "mia.laurent", "laurent@", "victor", "hugo", "69002", "1996"):
        assert value not in everything


def test_words_a_sensitive_value_would_need_are_not_all_indexed() -> None:
    # The creator wrote their address and phone into the public bio: a q equal to either
    # must still not match them, so at least one of the value's words is left out.
    secret = sensitive()
    bio = f"Write to me at {secret.address} or call {secret.phone}. Email {secret.email}."
    tokens = index_tokens(details(bio=bio), secret)
    present = {t[2:] for t in tokens if t.startswith("t:")}
    for value in (secret.address, secret.phone, secret.email):
        assert value is not None
        required = {w for w in words(value) if 2 <= len(w) <= 40}
        assert not required <= present, value
    assert "t:lyon" in tokens  # the city's word stays: the most specific word went


def test_a_filter_keyword_equal_to_a_sensitive_value_is_not_indexed() -> None:
    secret = sensitive(address="Rue Haute 5, Bruxelles")
    tokens = index_tokens(details(city="Rue Haute 5, Bruxelles"), secret)
    assert not any(t.startswith(("c:", "sc:", "kc:")) for t in tokens)


def test_a_measurement_in_the_bio_is_not_matchable() -> None:
    tokens = index_tokens(details(bio="I am 178 tall"), sensitive())
    assert "t:178" not in tokens
    assert "t:tall" in tokens


@pytest.mark.parametrize(
    "q",
    [
        "mia.laurent@example.org",
        "+33 6 12 34 56 78",
        "0612345678",
        "06 12 34 56 78",
        "1996-04-17",
        "17/04/1996",
        "call 06.12.34.56.78",
    ],
)
def test_contact_shaped_queries_match_nothing(q: str) -> None:
    assert contact_shaped(q)
    assert plan(SearchQuery(q=q), max_q_terms=8) is NOTHING


@pytest.mark.parametrize("q", ["runway model lyon", "Élodie", "2019 campaign", "size 38"])
def test_ordinary_queries_are_not_contact_shaped(q: str) -> None:
    assert not contact_shaped(q)


def test_plans() -> None:
    assert plan(SearchQuery(), max_q_terms=8).terms == (ALL,)
    filters = plan(
        SearchQuery(category="model", skill="Défilé", city="Saint-Étienne", language="PT-br"),
        max_q_terms=8,
    )
    assert filters.terms == ("sc:defile@saint etienne", "k:model", "l:pt-br")
    assert plan(SearchQuery(category="model", city="Lyon"), max_q_terms=8).terms == (
        "kc:model@lyon",
    )
    assert plan(SearchQuery(category="model", skill="Runway"), max_q_terms=8).terms == (
        "ks:model@runway",
    )
    assert plan(SearchQuery(skill="Runway"), max_q_terms=8).terms == ("s:runway",)
    assert filters.order is Order.recency and not filters.text_terms
    text = plan(SearchQuery(city="Lyon", q="Runway runway ÉDITORIAL"), max_q_terms=8)
    assert "c:lyon" in text.terms
    assert text.terms == ("c:lyon", "t:runway", "t:editorial")
    assert text.text_terms == ("t:runway", "t:editorial")
    assert text.order is Order.relevance
    assert plan(SearchQuery(q="   "), max_q_terms=8).terms == (ALL,)
    assert plan(SearchQuery(q="a , ."), max_q_terms=8) is NOTHING
    assert plan(SearchQuery(skill="!!!"), max_q_terms=8) is NOTHING


def test_too_many_words_are_refused_not_truncated() -> None:
    with pytest.raises(SearchQueryInvalidError, match="at most 3"):
        plan(SearchQuery(q="one two three four"), max_q_terms=3)


def test_fingerprints_tell_queries_apart() -> None:
    a = plan(SearchQuery(city="Lyon", q="runway"), max_q_terms=8)
    b = plan(SearchQuery(city="Lyon", q="editorial"), max_q_terms=8)
    same = plan(SearchQuery(q="runway", city="LYON"), max_q_terms=8)
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == same.fingerprint

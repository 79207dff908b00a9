"""Search over published profiles: filters, relevance then recency, cursors, bounded reads,
and that sensitive values are never returned nor matched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.platform.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mmgen.profiles.adapters.memory import InMemorySearchIndex
from mmgen.profiles.adapters.read_models import IndexEntry, Posting, ProfileRow, epoch_ms
from mmgen.profiles.domain.profile import SensitiveDetails
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.domain.search import SearchQuery, index_tokens
from mmgen.profiles.entrypoints.api.schemas import ProfileCard
from mmgen.profiles.service_layer.profiles import put_profile
from mmgen.profiles.service_layer.search import SearchLimits, SearchPage, search_profiles
from mmgen.runtime.erasure import parse_erase
from mmgen.runtime.testing import erase_command

from ..conftest import TODAY, Profiles, creator_actor, details, foreign_envelope, new_id, sensitive

CLIENT = Viewer("33333333-3333-4333-8333-333333333333", "client")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def search(
    parts: Profiles,
    *,
    limit: int = 20,
    cursor: str | None = None,
    limits: SearchLimits | None = None,
    viewer: Viewer = CLIENT,
    **query: Any,
) -> SearchPage:
    return await search_profiles(
        parts.index,
        parts.profiles,
        viewer=viewer,
        query=SearchQuery(**query),
        limit=limit,
        position=decode_cursor(cursor) if cursor else None,
        limits=limits,
    )


def ids(page: SearchPage) -> list[str]:
    return [item.creator_id for item in page.items]


async def listed(parts: Profiles, minutes: int, **overrides: Any) -> str:
    """A listed profile written straight into the read models, listed at T0 + minutes."""
    creator = new_id()
    at = T0 + timedelta(minutes=minutes)
    profile = details(**overrides)
    row = ProfileRow(creator, 3, profile, published=True, updated_at=at, published_at=at)
    assert await parts.profiles.put(row)
    tokens = index_tokens(profile, SensitiveDetails())
    await parts.index.add_new([IndexEntry(creator, tokens, epoch_ms(at))])
    return creator


async def all_pages(parts: Profiles, **kwargs: Any) -> tuple[list[str], int]:
    found: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await search(parts, cursor=cursor, **kwargs)
        found.extend(ids(page))
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return found, pages
        assert pages < 100


# --- what is listed ---------------------------------------------------------------------------


async def test_only_published_profiles_of_live_accounts_are_found(parts: Profiles) -> None:
    shown = await parts.creator()
    hidden = await parts.creator(publish=False)
    closed = await parts.creator()
    await parts.deliver(
        foreign_envelope(
            "identity.AccountClosed",
            {"closed_by": "self"},
            subject_id=closed.creator_id,
            stream_id=closed.creator_id,
            stream_version=4,
        )
    )
    page = await search(parts)
    assert ids(page) == [shown.creator_id]
    assert hidden.creator_id not in ids(await search(parts, q="mia"))


async def test_filters_match_folded_keywords(parts: Profiles) -> None:
    model = await listed(parts, 1, skills=["Défilé"], city="Saint-Étienne", languages=["pt-BR"])
    promoter = await listed(parts, 2, category="promoter", city="Lyon", languages=["fr"])
    assert ids(await search(parts, skill="DEFILE")) == [model]
    assert ids(await search(parts, city="saint etienne")) == [model]
    assert ids(await search(parts, language="pt")) == [model]
    assert ids(await search(parts, language="pt-br")) == [model]
    assert ids(await search(parts, category="promoter")) == [promoter]
    assert ids(await search(parts, category="model", city="Lyon")) == []
    assert ids(await search(parts, skill="unknown skill")) == []
    assert ids(await search(parts)) == [promoter, model]


async def test_q_needs_every_word_and_ignores_accents(parts: Profiles) -> None:
    elodie = await listed(parts, 1, display_name="Élodie Durand", bio="Runway and editorial.")
    other = await listed(parts, 2, display_name="Anna Berg", bio="Editorial only.")
    assert ids(await search(parts, q="elodie")) == [elodie]
    assert ids(await search(parts, q="ÉLODIE runway")) == [elodie]
    assert ids(await search(parts, q="elodie catwalk")) == []
    assert set(ids(await search(parts, q="editorial"))) == {elodie, other}


# --- ranking and pages ------------------------------------------------------------------------


async def test_relevance_then_recency(parts: Profiles) -> None:
    in_bio_old = await listed(parts, 1, display_name="A One", bio="Loves photography.")
    in_name = await listed(parts, 2, display_name="Photography Studio Kim", bio="Studio.")
    in_bio_new = await listed(parts, 3, display_name="B Two", bio="Photography daily.")
    in_skill = await listed(parts, 4, display_name="C Three", skills=["Photography"])
    page = await search(parts, q="photography")
    assert ids(page) == [in_name, in_skill, in_bio_new, in_bio_old]


async def test_recency_pages_walk_the_rarest_token_in_bounded_windows(parts: Profiles) -> None:
    lyon = [
        await listed(parts, i, city="Lyon" if i % 3 else "Paris", skills=["Runway"])
        for i in range(40)
    ]
    expected = [c for i, c in reversed(list(enumerate(lyon))) if i % 3]
    limits = SearchLimits(window=4, max_postings=9, max_candidates=100)
    found, pages = await all_pages(parts, limit=5, limits=limits, city="Lyon", skill="Runway")
    assert found == expected  # most recently listed first, each once
    assert pages > len(expected) // 5  # bounded requests: some pages came back short


async def test_relevance_pages_are_stable(parts: Profiles) -> None:
    creators = [
        await listed(
            parts,
            i,
            display_name=f"Name {i}" + (" Runway" if i % 4 == 0 else ""),
            bio="runway" if i % 2 else "editorial",
            skills=[],
            experience=[],
        )
        for i in range(30)
    ]
    full = await search(parts, q="runway", limit=100)
    assert len(full.items) == len([i for i in range(30) if i % 4 == 0 or i % 2])
    found, _ = await all_pages(parts, q="runway", limit=4, limits=SearchLimits(window=7))
    assert found == ids(full)
    assert found[: len([i for i in range(30) if i % 4 == 0])] == [
        creators[i] for i in reversed(range(30)) if i % 4 == 0
    ]


async def test_relevance_considers_the_newest_candidates_of_the_rarest_token(
    parts: Profiles,
) -> None:
    old = [await listed(parts, i, bio="catwalk") for i in range(5)]
    new = [await listed(parts, 10 + i, bio="catwalk") for i in range(5)]
    page = await search(parts, q="catwalk", limits=SearchLimits(window=2, max_candidates=5))
    assert set(ids(page)) == set(new)
    assert not set(ids(page)) & set(old)


async def test_a_cursor_only_continues_its_own_search(parts: Profiles) -> None:
    for i in range(6):
        await listed(parts, i, city="Lyon" if i % 2 else "Paris")
    page = await search(parts, city="Lyon", limit=2)
    assert page.next_cursor is not None
    for other in ({"city": "Paris"}, {"city": "Lyon", "q": "mia"}):
        with pytest.raises(InvalidCursorError):
            await search(parts, limit=2, cursor=page.next_cursor, **other)
    forged = encode_cursor({**decode_cursor(page.next_cursor), "b": "x"})
    with pytest.raises(InvalidCursorError):
        await search(parts, city="Lyon", limit=2, cursor=forged)
    with pytest.raises(InvalidCursorError):
        await search(parts, city="Lyon", limit=2, cursor="not-a-cursor")


async def test_a_cursor_keeps_its_token_when_another_becomes_rarer(parts: Profiles) -> None:
    lyon_promoters = [await listed(parts, i, city="Lyon", category="promoter") for i in range(3)]
    await listed(parts, 3, city="Paris", category="promoter")
    first = await search(parts, city="Lyon", category="promoter", limit=2)
    assert first.next_cursor is not None
    started_on = decode_cursor(first.next_cursor)["t"]
    assert started_on in {"c:lyon", "kc:promoter@lyon"}  # the pair token, where one exists
    # Listed meanwhile: Lyon is now commoner than promoter, the rarest token of a new search.
    for i in range(5):
        await listed(parts, 10 + i, city="Lyon", category="model")
    rest = await search(parts, city="Lyon", category="promoter", limit=2, cursor=first.next_cursor)
    assert ids(first) + ids(rest) == lyon_promoters[::-1]  # no page refused, none repeated
    assert rest.next_cursor is None


class CountingIndex(InMemorySearchIndex):
    def __init__(self) -> None:
        super().__init__()
        self.windows: list[tuple[str, int, int]] = []
        self.lookups = 0

    async def window(self, token: str, low: int, high: int) -> list[Posting]:
        self.windows.append((token, low, high))
        return await super().window(token, low, high)

    async def lookup(self, keys: Any) -> list[Posting]:
        self.lookups += len(keys)
        return await super().lookup(keys)


async def test_the_rarest_token_is_read_and_unknown_tokens_cost_nothing(parts: Profiles) -> None:
    parts.index = CountingIndex()
    for i in range(20):
        await listed(parts, i, city="Lyon" if i < 3 else "Paris")
    index = parts.index
    assert isinstance(index, CountingIndex)
    assert len(ids(await search(parts, language="fr", city="Lyon"))) == 3
    assert {token for token, _, _ in index.windows} == {"c:lyon"}
    assert index.lookups == 3  # each Lyon candidate checked once against the language
    index.windows.clear()
    index.lookups = 0
    assert len(ids(await search(parts, category="model", city="Lyon"))) == 3
    assert {token for token, _, _ in index.windows} == {"kc:model@lyon"}  # one pair token
    assert index.lookups == 0
    index.windows.clear()
    assert ids(await search(parts, city="Atlantis")) == []
    assert ids(await search(parts, q="zzzz")) == []
    assert index.windows == []


# --- sensitive values ------------------------------------------------------------------------


async def test_search_never_returns_or_matches_sensitive_values(parts: Profiles) -> None:
    secret = sensitive()
    quiet = await parts.creator(secrets=secret)
    # Another creator's public bio repeats every value of theirs. The aggregate refuses that
    # (`exposure_problems`); the tokens must hold all the same, so it is written straight into
    # the read models here.
    chatty_secret = sensitive(
        phone="+44 20 7946 0958",
        email="zoe@example.net",
        address="221B Baker Street, London",
        date_of_birth="1990-01-02",
    )
    bio = (
        f"Call {chatty_secret.phone}, mail {chatty_secret.email}, visit "
        f"{chatty_secret.address}, born {chatty_secret.date_of_birth}."
    )
    chatty_details = details(bio=bio, display_name="Zoe Hart")
    chatty = ProfileRow(new_id(), 3, chatty_details, published=True, updated_at=T0, published_at=T0)
    assert await parts.profiles.put(chatty)
    tokens = index_tokens(chatty_details, chatty_secret)
    await parts.index.add_new([IndexEntry(chatty.creator_id, tokens, epoch_ms(T0))])
    everyone = await search(parts, limit=50)
    assert set(ids(everyone)) == {quiet.creator_id, chatty.creator_id}
    cards = json.dumps([ProfileCard.of(p).model_dump(mode="json") for p in everyone.items])
    for value in ("+33 6 12 34 56 78", "mia.laurent@example.org", "Victor Hugo", "1996-04-17"):
        assert value not in cards
    assert not any(hasattr(p, "sensitive") for p in everyone.items)
    for q in (
        secret.phone,
        secret.email,
        secret.address,
        "12 rue Victor Hugo 69002 Lyon",
        "1996-04-17",
        chatty_secret.phone,
        chatty_secret.email,
        chatty_secret.address,
        "221B Baker Street London",
        "zoe example net",
    ):
        assert ids(await search(parts, q=q)) == [], q
    assert ids(await search(parts, q="zoe hart")) == [chatty.creator_id]
    assert ids(await search(parts, city=secret.address)) == []


async def test_a_sensitive_change_does_not_move_a_profile_in_search(parts: Profiles) -> None:
    first = await parts.creator()
    second = await parts.creator()
    before = ids(await search(parts))
    assert before == [second.creator_id, first.creator_id]
    await put_profile(
        parts.repository,
        actor=creator_actor(first.creator_id),
        details=details(),
        sensitive=sensitive(phone="+33 7 99 88 77 66"),
        today=TODAY,
    )
    await parts.catch_up()
    assert ids(await search(parts)) == before


async def test_an_erased_creator_disappears_from_search_at_once(parts: Profiles) -> None:
    gone = await parts.creator(display_name="Gone Soon")
    stays = await parts.creator()
    assert gone.creator_id in ids(await search(parts))
    await parts.erasure.erase_subject(parse_erase(erase_command(gone.creator_id)))
    assert ids(await search(parts)) == [stays.creator_id]
    assert ids(await search(parts, q="gone soon")) == []
    assert await parts.index.count(gone.creator_id) == 0
    await parts.catch_up()  # replaying its events brings nothing back
    assert ids(await search(parts)) == [stays.creator_id]


async def test_staff_searches_are_audited_client_searches_are_not(parts: Profiles) -> None:
    await parts.creator()
    assert (await search(parts)).access is None
    staff = await search(parts, viewer=Viewer(new_id(), "staff", "support"))
    assert staff.access is not None
    assert staff.access.records == 1 and staff.access.purpose == "support"

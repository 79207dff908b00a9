"""Search over published profiles: intersect the postings of the query's tokens, bounded reads.

The plan (`domain.search.plan`) gives the tokens every result must hold. Then:
1. one read of the tokens' heads (how many sequence numbers each gave out) — a token never
   given out means no result, at no further cost; the token with the lowest head is the
   rarest, and the only one whose postings are read;
2. its postings are read newest first, in windows of its sequence range (one bounded range of
   an index each), and the candidates are checked against the other tokens by key;
3. ordering:
   - filters only (recency): the rarest token's sequence order is listing order, so results
     stream window by window and a page stops as soon as it is full; the first window is sized
     for one page at the share of candidates expected to hold the other tokens (from the
     heads), each next one twice as large; one request reads at most `max_postings` sequence
     numbers of the rarest token, and a page that reached that bound comes back short with a
     cursor to go on;
   - with `q` (relevance): the newest `max_candidates` sequence numbers of the rarest token are
     the pool; results are ranked by the sum of the `q` words' weights, then listing time,
     then id; the pool is pinned in the cursor, so paging is stable while profiles change;
4. the page's rows are read by id and passed through the reveal rule (search context: public
   part of published profiles of live accounts only).

The cursor is opaque (platform cursor encoding) and names the query it belongs to and the
token it walks (kept for every next page, whatever the heads say by then).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmgen.platform.pagination import InvalidCursorError, encode_cursor
from mmgen.profiles.adapters.read_models import Posting, ProfileReadModel, SearchIndex
from mmgen.profiles.domain.events import PORTFOLIO
from mmgen.profiles.domain.reveal import AUDITED_ROLES, NO_RELATIONS, Context, Viewer, decide
from mmgen.profiles.domain.search import ALL, Order, QueryPlan, SearchQuery, plan, signature
from mmgen.profiles.service_layer.audit import Access
from mmgen.profiles.service_layer.profiles import PublicProfile

if TYPE_CHECKING:
    from mmgen.profiles.settings import ProfilesSettings


@dataclass(frozen=True)
class SearchLimits:
    """How much one search request may read (see `ProfilesSettings`)."""

    window: int = 250
    max_postings: int = 2_000
    max_candidates: int = 500
    max_q_terms: int = 8

    @classmethod
    def of(cls, settings: ProfilesSettings) -> SearchLimits:
        return cls(
            window=settings.search_window,
            max_postings=settings.search_max_postings,
            max_candidates=settings.search_max_candidates,
            max_q_terms=settings.search_max_q_terms,
        )


@dataclass(frozen=True)
class SearchPage:
    items: list[PublicProfile]
    next_cursor: str | None
    #: Set for callers whose reads are audited (staff, compliance, admin).
    access: Access | None = None


@dataclass(frozen=True)
class _Hit:
    creator_id: str
    seq: int
    score: int
    listed_at_ms: int

    def rank(self) -> tuple[int, int, str]:
        return (-self.score, -self.listed_at_ms, self.creator_id)


async def _matching(
    index: SearchIndex, candidates: Sequence[Posting], others: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Candidates holding every other token: creator → {token: weight} of those tokens.

    The postings' signatures rule out most candidates in memory; only the rest are looked up
    by key (which also gives the weights and rules out the signatures' false positives)."""
    if not others:
        return {p.creator_id: {} for p in candidates}
    mask = signature(others)
    keys = [
        (token, p.creator_id) for p in candidates if p.signature & mask == mask for token in others
    ]
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for posting in await index.lookup(keys):
        held[posting.creator_id][posting.token] = posting.weight
    return {creator: weights for creator, weights in held.items() if len(weights) == len(others)}


def _walked(position: Mapping[str, Any], query: QueryPlan) -> str:
    """The token a cursor walks: the next pages keep walking it, even if another token has
    become rarer since (profiles listed meanwhile), so the positions stay comparable."""
    token = position.get("t")
    if position.get("f") != query.fingerprint or token not in query.terms:
        raise InvalidCursorError("the cursor belongs to another search")
    return str(token)


def _int(position: Mapping[str, Any], name: str) -> int:
    value = position.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidCursorError("the cursor is not one this service issued")
    return value


def _first_window(
    heads: Mapping[str, int], others: Sequence[str], limit: int, limits: SearchLimits
) -> int:
    """Size of the first window: enough for a page at the expected share of the rarest token's
    postings that hold the other tokens too (heads as counts, tokens taken as independent)."""
    listed = max(heads.get(ALL, 0), 1)
    share = 1.0
    for token in others:
        share *= min(1.0, heads[token] / listed)
    wanted = math.ceil((limit + 1) / max(share, 1e-6) * 1.25)
    return max(limit + 1, min(limits.window, wanted))


async def _by_recency(
    index: SearchIndex,
    query: QueryPlan,
    rarest: str,
    heads: Mapping[str, int],
    limit: int,
    position: Mapping[str, Any] | None,
    limits: SearchLimits,
) -> tuple[list[_Hit], dict[str, Any] | None]:
    below = _int(position, "b") if position else heads[rarest] + 1
    floor = max(1, below - limits.max_postings)
    others = [t for t in query.terms if t != rarest]
    size = _first_window(heads, others, limit, limits)
    hits: list[_Hit] = []
    high = below - 1
    while high >= floor and len(hits) <= limit:
        low = max(floor, high - size + 1)
        size = min(limits.window, size * 2)
        postings = await index.window(rarest, low, high)
        matching = await _matching(index, postings, others)
        hits.extend(
            _Hit(p.creator_id, p.seq, 0, p.listed_at_ms)
            for p in postings
            if p.creator_id in matching
        )
        high = low - 1
    page = hits[:limit]
    if len(hits) > limit:
        return page, {"b": page[-1].seq}
    if high >= 1:  # stopped at the bound of this request, not at the end
        return page, {"b": high + 1}
    return page, None


async def _by_relevance(
    index: SearchIndex,
    query: QueryPlan,
    rarest: str,
    heads: Mapping[str, int],
    limit: int,
    position: Mapping[str, Any] | None,
    limits: SearchLimits,
) -> tuple[list[_Hit], dict[str, Any] | None]:
    head = heads[rarest]
    top = min(_int(position, "h"), head) if position else head
    floor = max(1, top - limits.max_candidates + 1)
    spans = [
        (max(floor, high - limits.window + 1), high)
        for high in range(top, floor - 1, -limits.window)
    ]
    windows = await asyncio.gather(*(index.window(rarest, low, high) for low, high in spans))
    pool = [posting for window in windows for posting in window]
    others = [t for t in query.terms if t != rarest]
    matching = await _matching(index, pool, others)
    weighted = set(query.text_terms)
    hits = []
    for posting in pool:
        weights = matching.get(posting.creator_id)
        if weights is None:
            continue
        score = sum(w for t, w in weights.items() if t in weighted)
        if rarest in weighted:
            score += posting.weight
        hits.append(_Hit(posting.creator_id, posting.seq, score, posting.listed_at_ms))
    hits.sort(key=_Hit.rank)
    if position:
        after = (-_int(position, "s"), -_int(position, "r"), str(position.get("c", "")))
        hits = [h for h in hits if h.rank() > after]
    page = hits[:limit]
    if len(hits) > limit:
        last = page[-1]
        return page, {"h": top, "s": last.score, "r": last.listed_at_ms, "c": last.creator_id}
    return page, None


async def search_profiles(
    index: SearchIndex,
    profiles: ProfileReadModel,
    *,
    viewer: Viewer,
    query: SearchQuery,
    limit: int,
    position: Mapping[str, Any] | None = None,
    limits: SearchLimits | None = None,
) -> SearchPage:
    """One page of published profiles matching `query` (public parts only)."""
    limits = limits or SearchLimits()
    planned = plan(query, max_q_terms=limits.max_q_terms)
    if planned.impossible:
        return SearchPage([], None)
    heads = await index.heads(list(dict.fromkeys([*planned.terms, ALL])))
    if any(term not in heads for term in planned.terms):
        return SearchPage([], None)  # a token no listed profile holds
    if position is None:
        rarest = min(planned.terms, key=lambda t: (heads[t], t))
    else:
        rarest = _walked(position, planned)
    run = _by_relevance if planned.order is Order.relevance else _by_recency
    hits, after = await run(index, planned, rarest, heads, limit, position, limits)
    rows = await profiles.get_many([h.creator_id for h in hits])
    items = []
    for hit in hits:
        row = rows.get(hit.creator_id)
        if row is None or row.details is None:
            continue
        if decide(viewer, row.target, NO_RELATIONS, Context.search).visible:
            items.append(PublicProfile.of(row))
    next_cursor = None
    if after is not None:
        next_cursor = encode_cursor({**after, "f": planned.fingerprint, "t": rarest})
    access = None
    if items and viewer.role in AUDITED_ROLES:
        access = Access(
            resource_id="search",
            categories=(PORTFOLIO,),
            purpose=viewer.purpose,
            records=len(items),
        )
    return SearchPage(items, next_cursor, access)

"""Search tokens of a published profile, and the plan of a search query — pure functions.

The database has no text index, so the service keeps its own tokens (INFRA.md). A profile
gets one token per filterable value and one per word of its public text, all folded (NFKD,
accents and case dropped):

- `*` — every listed profile (a search without filters or `q`);
- `k:<category>` — `?category=`;
- `s:<skill>` — each skill as one keyword, `?skill=`;
- `c:<city>` — the city as one keyword, `?city=`;
- `sc:<skill>@<city>`, `kc:<category>@<city>`, `ks:<category>@<skill>` — pairs of filters, so
  a search on two of them reads the postings of one token;
- `l:<tag>`, `l:<primary>` — each language (`pt-br` also gives `pt`), `?language=`;
- `t:<word>` — words of name, skills, category, city, experience, portfolio titles and
  descriptions, and bio, for `?q=` (every word of `q` must match).

Each `t:` token carries a weight (the best field it occurs in: name 5, skill 4, category and
city 3, experience and portfolio titles 2, bio and descriptions 1); relevance is the sum of
the weights of the `q` words.

Sensitive values are never indexed, filtered, sorted or matched:
- tokens come only from `ProfileDetails`, which has no sensitive field;
- email addresses, links and digit runs longer than 4 are dropped from public text too;
- a `q` shaped like an email, a phone number or a date matches nothing at all;
- for each of the creator's own sensitive values (phone, email, address, birth date, each
  measurement) whose every word also appears among the creator's words, the most specific of
  those words is left out of the creator's tokens, so a `q` equal to that value (all its
  words required) cannot match the creator; a filter keyword equal to a sensitive value is
  not indexed either.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from mmgen.profiles.domain.errors import SearchQueryInvalidError
from mmgen.profiles.domain.profile import ProfileDetails, SensitiveDetails
from mmgen.profiles.domain.text import keyword, words

ALL = "*"
MIN_WORD = 2
MAX_WORD = 40
#: Longer digit runs (phone fragments, postcodes, ids) are never indexed.
MAX_DIGIT_WORD = 4

WEIGHT_NAME = 5
WEIGHT_SKILL = 4
WEIGHT_CATEGORY = 3
WEIGHT_CITY = 3
WEIGHT_TITLE = 2
WEIGHT_TEXT = 1

_EMAIL_LIKE = re.compile(r"\S+@\S+")
_URL_LIKE = re.compile(r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S+")
_DATE_LIKE = re.compile(r"\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}")
PAIR_SEPARATOR = "@"
SIGNATURE_BITS = 256
SIGNATURE_PROBES = 3
#: A `q` with this many digits or more is taken for a phone number (or an id) and matches nothing.
CONTACT_DIGITS = 6


def category_token(category: str) -> str:
    return f"k:{category}"


def skill_token(skill: str) -> str:
    return f"s:{keyword(skill)}"


def city_token(city: str) -> str:
    return f"c:{keyword(city)}"


def language_tokens(tag: str) -> list[str]:
    tag = tag.strip().lower()
    primary = tag.split("-", 1)[0]
    return list(dict.fromkeys([f"l:{tag}", f"l:{primary}"]))


def word_token(word: str) -> str:
    return f"t:{word}"


def indexable(word: str) -> bool:
    """Words kept as search terms: 2 to 40 characters, digit runs of at most 4 digits."""
    if not MIN_WORD <= len(word) <= MAX_WORD:
        return False
    return not (word.isdigit() and len(word) > MAX_DIGIT_WORD)


def text_words(text: str) -> list[str]:
    """The searchable words of public text: emails and links removed, then folded words."""
    text = _URL_LIKE.sub(" ", _EMAIL_LIKE.sub(" ", text))
    return [w for w in words(text) if indexable(w)]


def contact_shaped(q: str) -> bool:
    """True for a `q` that looks like an email, a phone number or a date: it matches nothing."""
    if "@" in q or _DATE_LIKE.search(q):
        return True
    return sum(ch.isdigit() for ch in q) >= CONTACT_DIGITS


def _sensitive_word_sets(sensitive: SensitiveDetails) -> list[frozenset[str]]:
    """For each sensitive value, the words a `q` equal to it would require."""
    values: list[str] = []
    if sensitive.phone:
        values.append(sensitive.phone)
    if sensitive.email:
        values.append(sensitive.email)
    if sensitive.address:
        values.append(sensitive.address)
    if sensitive.date_of_birth:
        dob = sensitive.date_of_birth
        values.append(dob.isoformat())
        values.append(f"{dob.day} {dob.month} {dob.year}")
    if sensitive.measurements:
        values.extend(str(v) for _, v in sensitive.measurements if v is not None)
    sets = [frozenset(w for w in words(value) if indexable(w)) for value in values]
    return [s for s in sets if s]


def _sensitive_keywords(sensitive: SensitiveDetails) -> set[str]:
    values = (sensitive.phone, sensitive.email, sensitive.address)
    return {keyword(v) for v in values if v}


def _most_specific(candidates: Iterable[str]) -> str:
    """The word that says most: digits first, then the longest (ties broken alphabetically)."""
    return max(candidates, key=lambda w: (any(c.isdigit() for c in w), len(w), w))


def pair_token(kind: str, first: str, second: str) -> str:
    """A token for two filters at once (`sc` skill and city, `kc` category and city, `ks`
    category and skill): a search on both reads one token's postings, not two."""
    return f"{kind}:{first}{PAIR_SEPARATOR}{second}"


def _pairs(tokens: Iterable[str]) -> list[str]:
    """The pair tokens of a profile, from the filter tokens it kept."""
    kinds: dict[str, list[str]] = {"k": [], "s": [], "c": []}
    for token in tokens:
        prefix, _, value = token.partition(":")
        if prefix in kinds:
            kinds[prefix].append(value)
    return [
        *(pair_token("sc", s, c) for s in kinds["s"] for c in kinds["c"]),
        *(pair_token("kc", k, c) for k in kinds["k"] for c in kinds["c"]),
        *(pair_token("ks", k, s) for k in kinds["k"] for s in kinds["s"]),
    ]


def index_tokens(details: ProfileDetails, sensitive: SensitiveDetails) -> dict[str, int]:
    """The tokens of a listed profile with their weights (see the module docstring)."""
    weights: dict[str, int] = {}

    def add(token: str, weight: int = 0) -> None:
        weights[token] = max(weights.get(token, 0), weight)

    def add_words(text: str, weight: int) -> None:
        for word in text_words(text):
            add(word_token(word), weight)

    add(ALL)
    add(category_token(details.category))
    add_words(details.category.replace("_", " "), WEIGHT_CATEGORY)
    add_words(details.display_name, WEIGHT_NAME)
    for skill in details.skills:
        add(skill_token(skill))
        add_words(skill, WEIGHT_SKILL)
    if details.city:
        add(city_token(details.city))
        add_words(details.city, WEIGHT_CITY)
    for tag in details.languages:
        for token in language_tokens(tag):
            add(token)
    for entry in details.experience:
        add_words(f"{entry.title} {entry.organisation}", WEIGHT_TITLE)
    for item in details.portfolio:
        add_words(item.title, WEIGHT_TITLE)
        add_words(item.description, WEIGHT_TEXT)
    add_words(details.bio, WEIGHT_TEXT)

    secret_keywords = _sensitive_keywords(sensitive)
    for token in [t for t in weights if t[:2] in ("s:", "c:")]:
        if token[2:] in secret_keywords:
            del weights[token]
    for token in _pairs(weights):
        add(token)
    present = {t[2:] for t in weights if t.startswith("t:")}
    for required in _sensitive_word_sets(sensitive):
        if required <= present:
            victim = _most_specific(required)
            del weights[word_token(victim)]
            present.discard(victim)
    return weights


def signature(tokens: Iterable[str]) -> int:
    """A Bloom filter of a profile's tokens, carried by each of its postings: a candidate read
    through one token is checked against the query's other tokens in memory first, and looked
    up by key only when the filter says it may hold them all (no false negatives; about 4 %
    false positives at 35 tokens, which a lookup then rules out)."""
    bits = 0
    for token in tokens:
        digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
        for probe in range(SIGNATURE_PROBES):
            bits |= 1 << ((digest >> (16 * probe)) % SIGNATURE_BITS)
    return bits


# --- queries ---------------------------------------------------------------------------------


class Order(StrEnum):
    recency = "recency"  # filters only: the most recently listed first
    relevance = "relevance"  # with `q`: the sum of the words' weights, then recency


@dataclass(frozen=True)
class SearchQuery:
    """What a caller asks: filters (exact keywords) and `q` (every word required)."""

    category: str | None = None
    skill: str | None = None
    city: str | None = None
    language: str | None = None
    q: str | None = None


@dataclass(frozen=True)
class QueryPlan:
    """The tokens every result must hold; `text_terms` are the ones that weigh (from `q`)."""

    terms: tuple[str, ...]
    text_terms: tuple[str, ...] = ()
    #: Nothing can match (a `q` shaped like contact details, or with no searchable word).
    impossible: bool = False
    order: Order = field(default=Order.recency)

    @property
    def fingerprint(self) -> str:
        """Identifies the query in a cursor, so a cursor is refused by another query."""
        raw = "\x1f".join([self.order.value, *sorted(self.terms)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


NOTHING = QueryPlan(terms=(), impossible=True)


def plan(query: SearchQuery, *, max_q_terms: int) -> QueryPlan:
    """The tokens a query needs; `NOTHING` when it cannot match anything."""
    for value in (query.skill, query.city):
        if value is not None and not keyword(value):
            return NOTHING
    category = query.category
    skill = keyword(query.skill) if query.skill is not None else None
    city = keyword(query.city) if query.city is not None else None
    terms: list[str] = []
    if skill and city:
        terms.append(pair_token("sc", skill, city))
        if category:
            terms.append(category_token(category))
    elif category and city:
        terms.append(pair_token("kc", category, city))
    elif category and skill:
        terms.append(pair_token("ks", category, skill))
    else:
        if category:
            terms.append(category_token(category))
        if skill:
            terms.append(f"s:{skill}")
        if city:
            terms.append(f"c:{city}")
    if query.language:
        terms.append(language_tokens(query.language)[0])
    text_terms: list[str] = []
    if query.q is not None and query.q.strip():
        if contact_shaped(query.q):
            return NOTHING
        found = list(dict.fromkeys(text_words(query.q)))
        if not found:
            return NOTHING
        if len(found) > max_q_terms:
            # Refused, never truncated: a truncated `q` could match what the whole cannot.
            raise SearchQueryInvalidError(
                f"q has {len(found)} searchable words; at most {max_q_terms} are accepted"
            )
        text_terms = [word_token(w) for w in found]
    terms.extend(text_terms)
    if not terms:
        terms = [ALL]
    return QueryPlan(
        terms=tuple(dict.fromkeys(terms)),
        text_terms=tuple(text_terms),
        order=Order.relevance if text_terms else Order.recency,
    )

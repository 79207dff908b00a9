"""Read models of the profiles service: their records and ports (Protocols).

- `ProfileReadModel`: the public part of each profile, its publication, the account's state,
  and a pointer to the event holding the sensitive details (never the details) — fed by the
  service's own events (`ProfileProjection`), identity's end of accounts, and erasure;
- `SearchIndex`: postings (token, creator) with a per-token sequence number, a weight and
  the listing time — fed by `ProfileProjection` and erasure;
- `ConsentGrants`: per creator, whether `profile.sensitive_sharing` is granted, as of which
  version of their consent stream — fed by consent's `ConsentGranted` / `ConsentWithdrawn`;
- `Memberships`: per (project, user), owner / creator / staff, active or not, as of which
  version of the project's stream — fed by projects' `ProjectCreated`, `MemberAdded`,
  `MemberRemoved`.

Each port has a Mongo adapter (`adapters.mongo`) and an in-memory one (`adapters.memory`) that
behave alike: writes are idempotent and version-guarded (a replayed or late event never moves
a record backwards), deletes take the caller's session (an erasure commits them in the
consumer's transaction; the in-memory adapters ignore it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from mmgen.profiles.domain.profile import ProfileDetails
from mmgen.profiles.domain.reveal import Target
from mmgen.runtime.contract import owner_of_subject

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from mmgen.events.keys import Keystore

#: The version an erased creator's record is pinned at, so no replay writes it again.
TOMBSTONE_VERSION = 2**62

MemberRole = Literal["owner", "creator", "staff"]


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class ProfileRow:
    """A profile as others read it: public part, publication, account state; no sensitive value."""

    creator_id: str
    version: int
    details: ProfileDetails | None
    published: bool = False
    #: Identity closed or erased the account (learnt from its events): hidden from clients.
    closed: bool = False
    #: The event whose encrypted part holds the current sensitive details.
    sensitive_event_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    published_at: datetime | None = None

    @property
    def target(self) -> Target:
        return Target(self.creator_id, published=self.published, active=not self.closed)

    @property
    def listed(self) -> bool:
        return self.details is not None and self.target.listed

    @property
    def listed_at(self) -> datetime | None:
        """When it was last published or had its public part changed (the recency of search)."""
        times = [t for t in (self.published_at, self.updated_at) if t is not None]
        return max(times) if times else None


class ProfileReadModel(Protocol):
    async def put(self, row: ProfileRow) -> bool:
        """Write the row's profile fields unless a version at least as new (or the creator's
        erasure) is stored; True if written. The account state (`closed`) is left alone."""

    async def get(self, creator_id: str) -> ProfileRow | None:
        """The row, or None (also for an erased creator)."""

    async def get_many(self, creator_ids: Sequence[str]) -> dict[str, ProfileRow]:
        """Rows by id (erased creators and rows without a profile left out)."""

    async def version(self, creator_id: str) -> int | None:
        """The stored version (`TOMBSTONE_VERSION` once erased), None without a record."""

    async def close(self, creator_id: str, session: AsyncClientSession | None = None) -> None:
        """Identity ended the account: hide the profile (kept, for the owner's export)."""

    async def erase(self, creator_id: str, session: AsyncClientSession | None = None) -> bool:
        """Delete the profile's contents for good, leaving a tombstone that holds only the id
        (so no late write brings them back); True if a profile was there. A record without a
        profile (a closed-account marker) is simply deleted."""

    async def reset(self) -> None:
        """Forget every profile's contents and version (a rebuild replays the store); account
        states and erasures are kept: they do not come from the service's own events."""


@dataclass(frozen=True)
class Posting:
    """One token of one listed profile: `seq` orders a token's postings by listing."""

    token: str
    creator_id: str
    seq: int
    weight: int
    listed_at_ms: int
    #: `domain.search.signature` of all the profile's tokens (0 where not read).
    signature: int = 0


@dataclass(frozen=True)
class IndexEntry:
    """What a profile contributes to the index (bulk loading)."""

    creator_id: str
    tokens: Mapping[str, int]
    listed_at_ms: int


class SearchIndex(Protocol):
    async def replace(self, creator_id: str, tokens: Mapping[str, int], listed_at_ms: int) -> int:
        """Make the creator's postings exactly `tokens` (with their weights); returns how many
        were written. A new listing time re-lists every token (they all move to the top)."""

    async def add_new(self, entries: Sequence[IndexEntry]) -> int:
        """Index creators that have no postings yet, in bulk (a rebuild, a benchmark)."""

    async def remove(self, creator_id: str, session: AsyncClientSession | None = None) -> int:
        """Delete the creator's postings; returns how many. A token no posting holds any more
        is forgotten altogether (its sequence counter goes too)."""

    async def heads(self, tokens: Sequence[str]) -> dict[str, int]:
        """The highest sequence number given out per token (tokens never used are absent)."""

    async def window(self, token: str, low: int, high: int) -> list[Posting]:
        """The token's postings with `low <= seq <= high`, highest first (one bounded read)."""

    async def lookup(self, keys: Sequence[tuple[str, str]]) -> list[Posting]:
        """The postings of these (token, creator) pairs that exist (reads by key)."""

    async def count(self, creator_id: str) -> int: ...

    async def clear(self) -> None:
        """Drop every posting and sequence (a rebuild)."""


@dataclass(frozen=True)
class ReindexPlan:
    """What `replace` changes: postings deleted, tokens (re)inserted, weights updated, and
    whether the postings kept need the new signature (the token set changed)."""

    delete: tuple[str, ...]
    insert: dict[str, int]
    reweight: dict[str, int]
    resign: bool = False


def plan_reindex(
    existing: Sequence[Posting], desired: Mapping[str, int], listed_at_ms: int
) -> ReindexPlan:
    """Shared by the adapters: a new listing time re-lists all tokens (new sequence numbers, so
    recency order holds); otherwise only added tokens get a place, removed ones go."""
    if any(p.listed_at_ms != listed_at_ms for p in existing):
        return ReindexPlan(tuple(p.token for p in existing), dict(desired), {})
    have = {p.token: p for p in existing}
    delete = tuple(t for t in have if t not in desired)
    insert = {t: w for t, w in desired.items() if t not in have}
    reweight = {t: w for t, w in desired.items() if t in have and have[t].weight != w}
    kept = len(have) - len(delete)
    return ReindexPlan(delete, insert, reweight, resign=bool(kept and (delete or insert)))


@dataclass(frozen=True)
class ConsentGrant:
    creator_id: str
    granted: bool
    version: int
    event_id: str
    decided_at: datetime | None = None


class ConsentGrants(Protocol):
    async def record(self, grant: ConsentGrant, session: AsyncClientSession | None = None) -> bool:
        """Store the decision unless one from a later consent-stream version is there."""

    async def get(self, creator_id: str) -> ConsentGrant | None: ...

    async def is_granted(self, creator_id: str) -> bool: ...

    async def delete(self, creator_id: str, session: AsyncClientSession | None = None) -> int: ...


@dataclass(frozen=True)
class Membership:
    project_id: str
    user_id: str
    role: MemberRole
    active: bool
    version: int


class Memberships(Protocol):
    async def record(
        self, membership: Membership, session: AsyncClientSession | None = None
    ) -> bool:
        """Store the membership unless one from a later project-stream version is there."""

    async def of_user(self, user_id: str) -> list[Membership]:
        """Every membership record of the user (active or not), one indexed read."""

    async def delete_user(self, user_id: str, session: AsyncClientSession | None = None) -> int: ...


async def shared_projects(
    memberships: Memberships, creator_id: str, user_id: str
) -> frozenset[str]:
    """Projects where the creator is an active creator member and the user the owner or an
    active member: the pairs creator↔user that open the shared-project reveal."""
    if creator_id == user_id:
        return frozenset()
    as_creator = {
        m.project_id
        for m in await memberships.of_user(creator_id)
        if m.active and m.role == "creator"
    }
    if not as_creator:
        return frozenset()
    return frozenset(m.project_id for m in await memberships.of_user(user_id) if m.active) & (
        as_creator
    )


class ErasedSubjects(Protocol):
    """Subjects erased in this service: their records are never written again."""

    async def is_erased(self, subject_id: str) -> bool: ...


class KeystoreErasedSubjects:
    """`ErasedSubjects` from the keystore's erasure markers (erasure shreds `subject:<id>`,
    which leaves a marker even for a subject that never had a key here)."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore

    async def is_erased(self, subject_id: str) -> bool:
        return await self.keystore.is_erased(owner_of_subject(subject_id))

"""In-memory read models for unit tests: the same contracts as `adapters.mongo`, in dicts."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mmgen.profiles.adapters.read_models import (
    TOMBSTONE_VERSION,
    ConsentGrant,
    IndexEntry,
    Membership,
    Posting,
    ProfileRow,
    plan_reindex,
)
from mmgen.profiles.domain.search import signature

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession


class InMemoryProfileReadModel:
    def __init__(self) -> None:
        self.rows: dict[str, ProfileRow] = {}
        self.tombstones: set[str] = set()

    async def put(self, row: ProfileRow) -> bool:
        if row.creator_id in self.tombstones:
            return False
        current = self.rows.get(row.creator_id)
        if current is not None and current.version >= row.version:
            return False
        closed = current.closed if current is not None else False
        self.rows[row.creator_id] = dataclasses.replace(row, closed=closed)
        return True

    async def get(self, creator_id: str) -> ProfileRow | None:
        row = self.rows.get(creator_id)
        return row if row is not None and row.details is not None else None

    async def get_many(self, creator_ids: Sequence[str]) -> dict[str, ProfileRow]:
        found = {cid: await self.get(cid) for cid in creator_ids}
        return {cid: row for cid, row in found.items() if row is not None}

    async def version(self, creator_id: str) -> int | None:
        if creator_id in self.tombstones:
            return TOMBSTONE_VERSION
        row = self.rows.get(creator_id)
        return None if row is None else row.version

    async def close(self, creator_id: str, session: AsyncClientSession | None = None) -> None:
        if creator_id in self.tombstones:
            return
        current = self.rows.get(creator_id) or ProfileRow(creator_id, 0, None)
        self.rows[creator_id] = dataclasses.replace(current, closed=True)

    async def erase(self, creator_id: str, session: AsyncClientSession | None = None) -> bool:
        row = self.rows.pop(creator_id, None)
        if row is None or row.details is None:
            return False  # no profile: a closed-account marker at most, nothing to keep
        self.tombstones.add(creator_id)
        return True

    async def reset(self) -> None:
        closed = [cid for cid, row in self.rows.items() if row.closed]
        self.rows = {cid: ProfileRow(cid, 0, None, closed=True) for cid in closed}


class InMemorySearchIndex:
    def __init__(self) -> None:
        self.postings: dict[str, dict[str, Posting]] = defaultdict(dict)  # token -> creator -> p
        self.by_creator: dict[str, dict[str, Posting]] = defaultdict(dict)  # creator -> token -> p
        self.seqs: dict[str, int] = {}

    def _insert(
        self, creator_id: str, token: str, weight: int, listed_at_ms: int, sig: int
    ) -> None:
        seq = self.seqs[token] = self.seqs.get(token, 0) + 1
        posting = Posting(token, creator_id, seq, weight, listed_at_ms, sig)
        self.postings[token][creator_id] = posting
        self.by_creator[creator_id][token] = posting

    def _delete(self, creator_id: str, token: str) -> None:
        self.postings[token].pop(creator_id, None)
        self.by_creator[creator_id].pop(token, None)
        if not self.postings[token]:  # no posting holds the word any more: forget it
            del self.postings[token]
            self.seqs.pop(token, None)

    async def replace(self, creator_id: str, tokens: Mapping[str, int], listed_at_ms: int) -> int:
        existing = list(self.by_creator.get(creator_id, {}).values())
        change = plan_reindex(existing, tokens, listed_at_ms)
        sig = signature(tokens)
        for token in change.delete:
            self._delete(creator_id, token)
        for token, weight in change.insert.items():
            self._insert(creator_id, token, weight, listed_at_ms, sig)
        for token, posting in list(self.by_creator.get(creator_id, {}).items()):
            weight = change.reweight.get(token, posting.weight)
            posting = dataclasses.replace(posting, weight=weight, signature=sig)
            self.postings[token][creator_id] = self.by_creator[creator_id][token] = posting
        return len(change.insert) + len(change.reweight)

    async def add_new(self, entries: Sequence[IndexEntry]) -> int:
        written = 0
        for entry in entries:
            sig = signature(entry.tokens)
            for token, weight in entry.tokens.items():
                self._insert(entry.creator_id, token, weight, entry.listed_at_ms, sig)
                written += 1
        return written

    async def remove(self, creator_id: str, session: AsyncClientSession | None = None) -> int:
        tokens = list(self.by_creator.get(creator_id, {}))
        for token in tokens:
            self._delete(creator_id, token)
        self.by_creator.pop(creator_id, None)
        return len(tokens)

    async def heads(self, tokens: Sequence[str]) -> dict[str, int]:
        return {t: self.seqs[t] for t in tokens if t in self.seqs}

    async def window(self, token: str, low: int, high: int) -> list[Posting]:
        found = [p for p in self.postings.get(token, {}).values() if low <= p.seq <= high]
        return sorted(found, key=lambda p: p.seq, reverse=True)

    async def lookup(self, keys: Sequence[tuple[str, str]]) -> list[Posting]:
        found = (self.postings.get(token, {}).get(creator) for token, creator in keys)
        return [p for p in found if p is not None]

    async def count(self, creator_id: str) -> int:
        return len(self.by_creator.get(creator_id, {}))

    async def clear(self) -> None:
        self.postings.clear()
        self.by_creator.clear()
        self.seqs.clear()


class InMemoryConsentGrants:
    def __init__(self) -> None:
        self.grants: dict[str, ConsentGrant] = {}

    async def record(self, grant: ConsentGrant, session: AsyncClientSession | None = None) -> bool:
        current = self.grants.get(grant.creator_id)
        if current is not None and current.version >= grant.version:
            return False
        self.grants[grant.creator_id] = grant
        return True

    async def get(self, creator_id: str) -> ConsentGrant | None:
        return self.grants.get(creator_id)

    async def is_granted(self, creator_id: str) -> bool:
        grant = self.grants.get(creator_id)
        return grant is not None and grant.granted

    async def delete(self, creator_id: str, session: AsyncClientSession | None = None) -> int:
        return int(self.grants.pop(creator_id, None) is not None)


class InMemoryMemberships:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Membership] = {}

    async def record(
        self, membership: Membership, session: AsyncClientSession | None = None
    ) -> bool:
        key = (membership.project_id, membership.user_id)
        current = self.records.get(key)
        if current is not None and current.version >= membership.version:
            return False
        self.records[key] = membership
        return True

    async def of_user(self, user_id: str) -> list[Membership]:
        return [m for m in self.records.values() if m.user_id == user_id]

    async def delete_user(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        keys = [k for k in self.records if k[1] == user_id]
        for key in keys:
            del self.records[key]
        return len(keys)


class InMemoryErasedSubjects:
    """`ErasedSubjects` over a set (tests that need no keystore)."""

    def __init__(self, erased: set[str] | None = None) -> None:
        self.erased: set[str] = set() if erased is None else erased

    async def is_erased(self, subject_id: str) -> bool:
        return subject_id in self.erased

"""The read-model contract, written once and run against the in-memory fakes and MongoDB.

The Mongo runs use the session's real database (`mongo_db`: a database per test); they also
check that the reads the service relies on are answered from an index (`explain`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.profiles.adapters.memory import (
    InMemoryConsentGrants,
    InMemoryMemberships,
    InMemoryProfileReadModel,
    InMemorySearchIndex,
)
from mmgen.profiles.adapters.mongo import (
    MongoConsentGrants,
    MongoMemberships,
    MongoProfileReadModel,
    MongoSearchIndex,
    ensure_indexes,
    posting_key,
)
from mmgen.profiles.adapters.read_models import (
    TOMBSTONE_VERSION,
    ConsentGrant,
    ConsentGrants,
    IndexEntry,
    Membership,
    Memberships,
    ProfileReadModel,
    ProfileRow,
    SearchIndex,
    shared_projects,
)
from mmgen.profiles.domain.search import signature

from ..conftest import details, new_id

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    profiles: ProfileReadModel
    index: SearchIndex
    consents: ConsentGrants
    memberships: Memberships
    db: Any = None


@pytest.fixture(params=["memory", "mongo"])
def store(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend(
            "memory",
            InMemoryProfileReadModel(),
            InMemorySearchIndex(),
            InMemoryConsentGrants(),
            InMemoryMemberships(),
        )
    db = request.getfixturevalue("mongo_db")
    return Backend(
        "mongo",
        MongoProfileReadModel(db),
        MongoSearchIndex(db, lookup_chunk=3),
        MongoConsentGrants(db),
        MongoMemberships(db),
        db,
    )


@pytest.fixture
async def backend(store: Backend) -> Backend:
    await ensure_indexes(store.profiles, store.index, store.consents, store.memberships)
    return store


def row(creator: str, version: int, **fields: Any) -> ProfileRow:
    at = T0 + timedelta(minutes=version)
    values: dict[str, Any] = {
        "details": details(),
        "published": True,
        "sensitive_event_id": new_id(),
        "created_at": T0,
        "updated_at": at,
        "published_at": at,
    }
    values.update(fields)
    return ProfileRow(creator, version, **values)


# --- profiles --------------------------------------------------------------------------------


async def test_rows_never_move_backwards(backend: Backend) -> None:
    p, creator = backend.profiles, new_id()
    assert await p.get(creator) is None and await p.version(creator) is None
    assert await p.put(row(creator, 3))
    assert not await p.put(row(creator, 2, published=False))
    assert not await p.put(row(creator, 3, published=False))
    stored = await p.get(creator)
    assert stored is not None and stored.published and stored.version == 3
    assert stored.details == details() and stored.updated_at == T0 + timedelta(minutes=3)
    assert await p.put(row(creator, 4, published=False, details=details(city="Nice")))
    stored = await p.get(creator)
    assert stored is not None and not stored.published and stored.details is not None
    assert stored.details.city == "Nice" and await p.version(creator) == 4
    other = new_id()
    await p.put(row(other, 1))
    assert set(await p.get_many([creator, other, new_id()])) == {creator, other}


async def test_closing_hides_and_survives_later_writes(backend: Backend) -> None:
    p, creator, early = backend.profiles, new_id(), new_id()
    await p.put(row(creator, 2))
    await p.close(creator)
    await p.close(creator)
    stored = await p.get(creator)
    assert stored is not None and stored.closed and not stored.listed
    assert await p.put(row(creator, 3))
    stored = await p.get(creator)
    assert stored is not None and stored.closed and stored.version == 3
    await p.close(early)  # before any profile: a marker only
    assert await p.get(early) is None and await p.version(early) == 0
    assert await p.put(row(early, 1))
    stored = await p.get(early)
    assert stored is not None and stored.closed


async def test_erasure_leaves_a_tombstone_that_no_write_passes(backend: Backend) -> None:
    p, creator, marker_only = backend.profiles, new_id(), new_id()
    await p.put(row(creator, 2))
    assert await p.erase(creator)
    assert not await p.erase(creator)
    assert await p.get(creator) is None
    assert await p.version(creator) == TOMBSTONE_VERSION
    assert not await p.put(row(creator, 99))
    await p.close(creator)
    assert await p.get(creator) is None and await p.get_many([creator]) == {}
    await p.close(marker_only)
    assert not await p.erase(marker_only)
    assert await p.version(marker_only) is None  # nothing kept for someone without a profile


async def test_reset_forgets_contents_but_not_closures_or_erasures(backend: Backend) -> None:
    p = backend.profiles
    plain, closed, erased = new_id(), new_id(), new_id()
    for creator in (plain, closed, erased):
        await p.put(row(creator, 5))
    await p.close(closed)
    await p.erase(erased)
    await p.reset()
    assert await p.version(plain) is None
    assert await p.version(closed) == 0
    assert await p.version(erased) == TOMBSTONE_VERSION
    await p.put(row(closed, 5))
    stored = await p.get(closed)
    assert stored is not None and stored.closed


# --- search index ----------------------------------------------------------------------------


async def test_postings_by_window_and_by_key(backend: Backend) -> None:
    ix = backend.index
    a, b, c = new_id(), new_id(), new_id()
    assert await ix.replace(a, {"*": 0, "c:lyon": 0, "t:mia": 5}, 1000) == 3
    assert await ix.replace(b, {"*": 0, "c:lyon": 0}, 2000) == 2
    assert await ix.replace(c, {"*": 0, "c:paris": 0}, 3000) == 2
    assert await ix.heads(["*", "c:lyon", "c:nowhere"]) == {"*": 3, "c:lyon": 2}
    everyone = await ix.window("*", 1, 3)
    assert [p.creator_id for p in everyone] == [c, b, a]
    assert [p.seq for p in everyone] == [3, 2, 1]
    assert [p.creator_id for p in await ix.window("*", 2, 2)] == [b]
    assert await ix.window("c:lyo", 1, 10) == []  # a prefix of a token is another token
    found = await ix.lookup([("c:lyon", a), ("c:lyon", c), ("t:mia", a), ("t:mia", b)])
    assert {(p.token, p.creator_id, p.weight) for p in found} == {
        ("c:lyon", a, 0),
        ("t:mia", a, 5),
    }
    assert (await ix.lookup([("t:mia", a)]))[0].listed_at_ms == 1000
    assert await ix.count(a) == 3


async def test_replace_keeps_places_unless_the_listing_time_changes(backend: Backend) -> None:
    ix, a, b = backend.index, new_id(), new_id()
    await ix.replace(a, {"*": 0, "t:one": 1, "t:two": 1}, 1000)
    await ix.replace(b, {"*": 0, "t:one": 1}, 2000)
    # Same listing time: kept tokens keep their place; a new token gets one; weights update.
    assert await ix.replace(a, {"*": 0, "t:one": 4, "t:three": 1}, 1000) == 2
    assert [p.creator_id for p in await ix.window("*", 1, 10)] == [b, a]
    assert (await ix.lookup([("t:one", a)]))[0].weight == 4
    assert await ix.lookup([("t:two", a)]) == []
    assert await ix.count(a) == 3
    # A new listing time moves every token of the profile to the top.
    await ix.replace(a, {"*": 0, "t:one": 4, "t:three": 1}, 5000)
    assert [p.creator_id for p in await ix.window("*", 1, 10)] == [a, b]
    assert (await ix.heads(["*"]))["*"] == 3
    assert await ix.remove(a) == 3
    assert await ix.remove(a) == 0
    assert [p.creator_id for p in await ix.window("*", 1, 10)] == [b]


async def test_every_posting_carries_the_signature_of_the_profile(backend: Backend) -> None:
    ix, a = backend.index, new_id()
    first = {"*": 0, "c:lyon": 0, "t:mia": 5}
    await ix.replace(a, first, 1000)
    assert {p.signature for p in await ix.window("*", 1, 10)} == {signature(first)}
    second = {"*": 0, "c:paris": 0, "t:mia": 5}
    await ix.replace(a, second, 1000)  # same listing time: kept postings are re-signed
    assert {p.signature for p in await ix.window("*", 1, 10)} == {signature(second)}
    assert {p.signature for p in await ix.window("c:paris", 1, 10)} == {signature(second)}
    bulk = IndexEntry(new_id(), {"*": 0, "t:zoe": 5}, 2000)
    await ix.add_new([bulk])
    assert (await ix.window("t:zoe", 1, 1))[0].signature == signature(bulk.tokens)
    mask = signature(["c:paris"])
    assert signature(second) & mask == mask


async def test_a_word_nobody_holds_any_more_is_forgotten(backend: Backend) -> None:
    ix, a, b = backend.index, new_id(), new_id()
    await ix.replace(a, {"*": 0, "t:laurent": 5, "t:runway": 1}, 1000)
    await ix.replace(b, {"*": 0, "t:runway": 1}, 2000)
    await ix.replace(a, {"*": 0, "t:runway": 1}, 1000)  # the name left the profile
    assert await ix.heads(["t:laurent"]) == {}
    await ix.replace(a, {"*": 0, "t:laurent": 5, "t:runway": 1}, 3000)
    assert await ix.remove(a) == 3
    assert await ix.heads(["*", "t:laurent", "t:runway"]) == {"*": 3, "t:runway": 3}
    await ix.remove(b)
    assert await ix.heads(["*", "t:runway"]) == {}


async def test_bulk_loading_gives_contiguous_places(backend: Backend) -> None:
    ix = backend.index
    entries = [IndexEntry(new_id(), {"*": 0, f"t:w{i % 2}": 1}, 1000 + i) for i in range(7)]
    assert await ix.add_new(entries) == 14
    assert (await ix.heads(["*", "t:w0", "t:w1"])) == {"*": 7, "t:w0": 4, "t:w1": 3}
    assert [p.listed_at_ms for p in await ix.window("*", 1, 7)] == [
        1006,
        1005,
        1004,
        1003,
        1002,
        1001,
        1000,
    ]
    await ix.clear()
    assert await ix.heads(["*"]) == {} and await ix.window("*", 1, 7) == []


# --- relations ----------------------------------------------------------------------------------


async def test_consent_grants_are_version_guarded(backend: Backend) -> None:
    g, creator = backend.consents, new_id()
    assert not await g.is_granted(creator) and await g.get(creator) is None
    assert await g.record(ConsentGrant(creator, True, 3, new_id(), T0))
    assert not await g.record(ConsentGrant(creator, False, 2, new_id(), T0))
    assert await g.is_granted(creator)
    assert await g.record(ConsentGrant(creator, False, 4, new_id(), T0))
    grant = await g.get(creator)
    assert grant is not None and not grant.granted and grant.version == 4
    assert grant.decided_at == T0
    assert await g.delete(creator) == 1 and await g.delete(creator) == 0


async def test_memberships_are_version_guarded_per_project_and_user(backend: Backend) -> None:
    m, creator, owner, p1, p2 = backend.memberships, new_id(), new_id(), new_id(), new_id()
    added = Membership(p1, creator, "creator", True, 2)
    assert await m.record(added)
    assert not await m.record(replace(added, active=False, version=1))
    assert await m.record(Membership(p1, owner, "owner", True, 1))
    assert await m.record(Membership(p2, owner, "owner", True, 1))
    assert await shared_projects(m, creator, owner) == {p1}
    assert await m.record(replace(added, active=False, version=3))
    assert await shared_projects(m, creator, owner) == frozenset()
    assert len(await m.of_user(owner)) == 2
    assert await m.delete_user(owner) == 2 and await m.of_user(owner) == []


async def test_a_late_event_in_the_consumers_transaction_commits_and_changes_nothing(
    mongo_db: Any,
) -> None:
    """The inbox writes in a transaction, where any failed write (a duplicate key) would abort
    it: a late consent decision or membership must be a no-op that still commits."""
    grants, members, creator = MongoConsentGrants(mongo_db), MongoMemberships(mongo_db), new_id()
    project = new_id()
    assert await grants.record(ConsentGrant(creator, False, 5, new_id(), T0))
    assert await members.record(Membership(project, creator, "creator", False, 4))

    async def late(session: Any) -> tuple[bool, bool, bool]:
        first = await grants.record(ConsentGrant(creator, True, 4, new_id(), T0), session)
        second = await members.record(Membership(project, creator, "creator", True, 3), session)
        newer = await grants.record(ConsentGrant(creator, True, 6, new_id(), T0), session)
        return first, second, newer

    async with mongo_db.client.start_session() as session:
        outcome = await session.with_transaction(late)
    assert outcome == (False, False, True)
    grant = await grants.get(creator)
    assert grant is not None and grant.granted and grant.version == 6
    (membership,) = await members.of_user(creator)
    assert not membership.active and membership.version == 4


# --- Mongo reads use indexes -------------------------------------------------------------------


def _plan_stages(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    stages: list[tuple[str, str | None]] = []
    node: dict[str, Any] | None = plan["queryPlanner"]["winningPlan"]
    while node:
        stages.append((node.get("stage", ""), node.get("indexName")))
        node = node.get("inputStage")
    return stages


async def test_mongo_reads_are_index_reads(mongo_db: Any) -> None:
    db = mongo_db
    index = MongoSearchIndex(db)
    await ensure_indexes(MongoProfileReadModel(db), index, MongoMemberships(db))
    await index.replace(new_id(), {"*": 0, "c:lyon": 0}, 1)
    window = {"k": {"$gte": posting_key("c:lyon", 1), "$lte": posting_key("c:lyon", 500)}}
    checks = [
        ("profile_postings", window, "token_seq"),
        ("profile_postings", {"_id": {"$in": ["c:lyon|x", "c:lyon|y"]}}, "_id_"),
        ("profile_postings", {"c": new_id()}, "creator"),
        ("profile_token_heads", {"_id": {"$in": ["*", "c:lyon"]}}, "_id_"),
        ("project_members", {"user_id": new_id()}, "user"),
        ("profiles", {"_id": {"$in": [new_id()]}}, "_id_"),
    ]
    for collection, query, index_name in checks:
        plan = await db.command("explain", {"find": collection, "filter": query})
        stages = _plan_stages(plan)
        assert ("IXSCAN", index_name) in stages, (collection, stages)
        assert not any(stage == "COLLSCAN" for stage, _ in stages), (collection, stages)

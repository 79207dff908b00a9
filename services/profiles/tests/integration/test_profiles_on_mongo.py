"""The service's parts on the real database: kernel, read models, projection, search, reveals,
erasure — and what the database holds in clear, read back document by document."""

from __future__ import annotations

from typing import Any

from bson import json_util

from mmgen.events.kernel import open_mongo_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.profiles.adapters.mongo import (
    MongoConsentGrants,
    MongoMemberships,
    MongoProfileReadModel,
    MongoSearchIndex,
    ensure_indexes,
)
from mmgen.profiles.domain.events import profiles_registry
from mmgen.profiles.domain.reveal import Viewer
from mmgen.profiles.domain.search import SearchQuery
from mmgen.profiles.service_layer.profiles import read_profile
from mmgen.profiles.service_layer.search import search_profiles
from mmgen.runtime.contract import register_standard_events
from mmgen.runtime.erasure import parse_erase
from mmgen.runtime.testing import erase_command

from ..conftest import Profiles, consent_event, membership_event, new_id, project_created

SENSITIVE_VALUES = ("+33 6 12 34 56 78", "mia.laurent@example.org", "Victor Hugo", "1996-04-17")
PUBLIC_VALUES = ("Mia Laurent", "Maison Rouge", "maison", "laurent", "example.com/mia")


async def on_mongo(db: Any) -> Profiles:
    registry = profiles_registry()
    standard = register_standard_events(registry, "profiles")
    kernel = await open_mongo_kernel(
        db,
        producer="profiles",
        registry=registry,
        keyring=MasterKeyring(MasterKey.generate()),
        key_cache_ttl_seconds=0,
    )
    parts = Profiles(
        kernel=kernel,
        profiles=MongoProfileReadModel(db),
        index=MongoSearchIndex(db),
        consents=MongoConsentGrants(db),
        memberships=MongoMemberships(db),
        standard=standard,
    )
    await ensure_indexes(parts.profiles, parts.index, parts.consents, parts.memberships)
    return parts


async def everything_in(db: Any) -> str:
    """Every document of every collection, as extended JSON (binary as base64)."""
    texts = []
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            texts.append(json_util.dumps(doc))
    return "\n".join(texts)


async def test_a_profile_on_the_database_from_write_to_erasure(mongo_db: Any) -> None:
    parts = await on_mongo(mongo_db)
    own = await parts.creator()
    creator = own.creator_id
    other = await parts.creator(
        display_name="Noa Stein",
        city="Paris",
        skills=["Promo"],
        bio="Event promoter.",
        experience=[],
        portfolio=[],
    )
    client = Viewer(new_id(), "client")

    async def found(**query: Any) -> list[str]:
        page = await search_profiles(
            parts.index, parts.profiles, viewer=client, query=SearchQuery(**query), limit=10
        )
        return [p.creator_id for p in page.items]

    assert await found(skill="runway", city="lyon") == [creator]
    assert await found(q="Mia Runway") == [creator]
    assert await found() == [other.creator_id, creator]
    for q in (*SENSITIVE_VALUES, "12 rue Victor Hugo, 69002 Lyon"):
        assert await found(q=q) == []

    stored = await everything_in(mongo_db)
    for value in SENSITIVE_VALUES:
        assert value not in stored, value

    owner, project = new_id(), new_id()
    await parts.deliver(
        consent_event(creator, granted=True, version=2),
        project_created(project, owner),
        membership_event(project, creator, added=True, version=2),
    )
    shown = await read_profile(
        parts.profiles, parts.relationships, parts.repository, viewer=client, creator_id=creator
    )
    assert shown.revealed is not None
    assert shown.revealed.sensitive.email == "mia.laurent@example.org"

    async with mongo_db.client.start_session() as session:

        async def erase(s: Any) -> Any:
            return await parts.erasure.erase_subject(parse_erase(erase_command(creator), s))

        outcome = await session.with_transaction(erase)
    assert outcome.keys_shredded == 1
    assert set(outcome.records_deleted) == {"portfolio", "consent", "project"}
    assert await found(skill="runway") == []
    assert await found() == [other.creator_id]
    footprint = await parts.erasure.footprint(creator)
    assert footprint.key_erased and footprint.readable_personal_fields == 0
    await parts.catch_up()  # a replay of its events writes nothing back
    assert await found() == [other.creator_id]

    stored = await everything_in(mongo_db)
    for value in (*SENSITIVE_VALUES, *PUBLIC_VALUES):
        assert value not in stored, value
    assert "Noa Stein" in stored  # the other creator's profile is still there

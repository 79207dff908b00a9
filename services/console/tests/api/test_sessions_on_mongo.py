"""Sessions in the console's own database (the real local MongoDB): they survive a restart,
replicas share them, a sign-out ends them everywhere, an ended one is refused, and the
database holds the tokens sealed only."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient

from mmgen.console.mongo_sessions import COLLECTION, MongoSessionStore
from mmgen.console.sessions import REFRESH_CLAIM_SECONDS, session_key
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.runtime.testing import assert_problem

from .conftest import OFFICER, SHORT, ConsoleKit, sign_in


def _cookie(client: Any) -> str:
    [value] = list(client.cookies.values())
    return str(value)


async def _raw(kit: ConsoleKit) -> bytes:
    """Every document of the console's database, as BSON bytes."""
    client: Any = AsyncMongoClient(kit.settings.mongo_uri)
    try:
        db = client[kit.settings.mongo_database]
        raw = b""
        for name in await db.list_collection_names():
            async for doc in db[name].find():
                raw += bson.encode(doc)
        return raw
    finally:
        await client.close()


async def test_a_session_survives_a_restart_of_the_console(kit: ConsoleKit) -> None:
    async with kit.running() as first:
        assert (await sign_in(first, OFFICER, "123456")).status_code == 201
        before = (await first.get("/api/session")).json()
        cookies = first.cookies
    async with kit.running(cookies) as restarted:
        after = await restarted.get("/api/session")
        assert after.status_code == 200, after.text
        assert after.json() == before  # same officer, same CSRF token
        # The officer's token, opened from the database, still reaches the services.
        placed = await restarted.post(
            "/api/retention/holds",
            json={"subject_id": "s1"},
            headers={"X-CSRF-Token": before["csrf_token"]},
        )
        assert placed.status_code == 201, placed.text
    sent = kit.services.seen[-1].headers["authorization"]
    assert sent == f"Bearer {kit.services.issued[-1]}"


async def test_two_replicas_share_a_session_and_a_sign_out_ends_it_on_both(
    kit: ConsoleKit,
) -> None:
    async with kit.running() as one:
        assert (await sign_in(one, OFFICER, "123456")).status_code == 201
        csrf = (await one.get("/api/session")).json()["csrf_token"]
        async with kit.running(one.cookies) as two:
            assert (await two.get("/api/session")).status_code == 200
            assert (await two.get("/api/retention/holds")).status_code == 200

            signed_out = await two.delete("/api/session", headers={"X-CSRF-Token": csrf})
            assert signed_out.status_code == 204
            assert_problem(await two.get("/api/session"), 401, "console-not-signed-in")
            assert_problem(await one.get("/api/session"), 401, "console-not-signed-in")
            assert_problem(await one.get("/api/retention/holds"), 401, "console-not-signed-in")


async def test_an_idle_session_is_refused_and_deleted(kit: ConsoleKit) -> None:
    async with kit.running() as client:
        assert (await sign_in(client, OFFICER, "123456")).status_code == 201
        key = session_key(_cookie(client))
        idle = kit.settings.session_idle_seconds
        db: Any = AsyncMongoClient(kit.settings.mongo_uri)
        try:
            sessions = db[kit.settings.mongo_database][COLLECTION]
            # Another replica saw it last longer ago than the idle timeout.
            await sessions.update_one({"_id": key}, {"$set": {"last_seen": time.time() - idle - 1}})
            assert_problem(await client.get("/api/session"), 401, "console-not-signed-in")
            assert await sessions.find_one({"_id": key}) is None
        finally:
            await db.close()


async def test_the_database_holds_no_token_in_clear_and_no_session_id(kit: ConsoleKit) -> None:
    async with kit.running() as client:
        assert (await sign_in(client, OFFICER, "123456")).status_code == 201
        session = (await client.get("/api/session")).json()
        cookie = _cookie(client)
    raw = await _raw(kit)
    assert session_key(cookie).encode() in raw  # the record is there, under the id's hash
    token = kit.services.issued[-1]
    for secret in (token, token.split(".")[1], "r-none", session["csrf_token"], cookie):
        assert secret.encode() not in raw, secret
        assert base64.b64encode(secret.encode()) not in raw


async def test_a_record_changed_in_the_database_does_not_open(kit: ConsoleKit) -> None:
    """The sealed tokens are bound to the record's key, subject and role."""
    async with kit.running() as client:
        assert (await sign_in(client, OFFICER, "123456")).status_code == 201
        key = session_key(_cookie(client))
        db: Any = AsyncMongoClient(kit.settings.mongo_uri)
        try:
            sessions = db[kit.settings.mongo_database][COLLECTION]
            await sessions.update_one({"_id": key}, {"$set": {"subject_id": "u-someone-else"}})
            assert_problem(await client.get("/api/session"), 401, "console-not-signed-in")
            assert await sessions.find_one({"_id": key}) is None
        finally:
            await db.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(mongo_db: Any) -> tuple[MongoSessionStore, MongoSessionStore, Clock]:
    """Two replicas' stores on one database, with one clock the test moves."""
    clock = Clock()
    keyring = MasterKeyring(MasterKey.generate("mk-test"))
    made = []
    for _ in range(2):
        keystore = MongoKeystore(mongo_db, keyring)
        await keystore.ensure_indexes()
        store = MongoSessionStore(mongo_db, keystore, idle_seconds=60, max_sessions=2, clock=clock)
        await store.ensure_indexes()
        made.append(store)
    return made[0], made[1], clock


async def test_expiry_on_the_token_and_on_idleness_holds_across_replicas(
    stores: tuple[MongoSessionStore, MongoSessionStore, Clock],
) -> None:
    one, two, clock = stores
    session = await one.open("access", "s1", "compliance", clock.now + 300, "refresh")
    seen = await two.get(session.id)
    assert seen is not None and seen.access_token == "access" and seen.refresh_token == "refresh"
    assert seen.csrf_token == session.csrf_token
    clock.now += 59
    assert await one.get(session.id) is not None  # used on one replica: alive on the other
    clock.now += 59
    assert await two.get(session.id) is not None
    clock.now += 61
    assert await two.get(session.id) is None  # idle too long
    assert await one.get(session.id) is None

    short = await one.open("access", "s1", "compliance", clock.now + 10)
    await two.renew(short, "renewed", clock.now + 20, None)
    clock.now += 15
    renewed = await one.get(short.id)
    assert renewed is not None and renewed.access_token == "renewed"
    clock.now += 5
    assert await one.get(short.id) is None  # the token's expiry


async def test_the_table_is_bounded_across_replicas(
    stores: tuple[MongoSessionStore, MongoSessionStore, Clock],
) -> None:
    from mmgen.console.sessions import SessionTableFullError

    one, two, clock = stores
    first = await one.open("a", "s1", "compliance", clock.now + 300)
    await two.open("b", "s2", "compliance", clock.now + 300)
    with pytest.raises(SessionTableFullError):
        await one.open("c", "s3", "compliance", clock.now + 300)
    await two.close(first.id)
    assert await one.get(first.id) is None
    await one.open("c", "s3", "compliance", clock.now + 300)
    assert await two.count() == 2


async def test_one_replica_spends_the_refresh_token(
    stores: tuple[MongoSessionStore, MongoSessionStore, Clock],
) -> None:
    """Identity revokes a refresh token spent twice: two replicas must not both spend it."""
    one, two, clock = stores
    session = await one.open("access", "s1", "compliance", clock.now + 50, "refresh")
    on_two = await two.get(session.id)
    assert on_two is not None
    assert await one.claim_refresh(session)
    assert not await two.claim_refresh(on_two)
    assert not await one.claim_refresh(session)
    clock.now += REFRESH_CLAIM_SECONDS + 1  # the claimant vanished: another may try
    assert await two.claim_refresh(on_two)
    await two.renew(on_two, "renewed", clock.now + 900, "refresh-2")
    renewed = await one.get(session.id)
    assert renewed is not None and renewed.access_token == "renewed"
    assert await one.claim_refresh(renewed)  # the new token's own claim


async def test_concurrent_requests_on_two_replicas_refresh_once(kit: ConsoleKit) -> None:
    async with kit.running() as one:
        assert (await sign_in(one, SHORT, "123456")).status_code == 201
        async with kit.running(one.cookies) as two:
            answers = await asyncio.gather(
                *(client.get("/api/session") for client in (one, two, one, two))
            )
            assert [a.status_code for a in answers] == [200] * 4
            assert kit.services.refreshed == ["r-good"]
            later = (await two.get("/api/session")).json()
            assert later["expires_at"] > time.time() + 600  # the refreshed token, on both
            assert (await one.get("/api/session")).json() == later

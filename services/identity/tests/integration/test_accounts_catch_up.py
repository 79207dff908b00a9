"""The accounts read model is a projection of identity's store, against the real database and
broker: a close the read model never saw (the process died right after the append) is applied
by the next process, whose projector catches up — the account's token is refused; and read
models dropped with their checkpoint are rebuilt from the store, identical."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.envelope import Actor
from mmgen.events.kernel import mongo_kernel
from mmgen.events.mapper import NewEvent
from mmgen.identity.adapters.projection import PROJECTION
from mmgen.identity.domain.events import AccountClosed, identity_registry
from mmgen.identity.settings import IdentitySettings
from mmgen.runtime.service import PROJECTION_STATE
from mmgen.runtime.testing import assert_problem, eventually
from services.identity.tests.identity_kit import Running, identity_settings, running

#: The read models the accounts projection derives from the store. (Refresh tokens, throttle
#: counters and signing keys are identity's own state, not projections of events.)
READ_MODELS = ("users", "email_index")


async def database(settings: IdentitySettings) -> tuple[AsyncMongoClient[Any], AsyncDatabase[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    return client, client[settings.mongo_database]


async def append_close_as_a_crash_leaves_it(settings: IdentitySettings, user_id: str) -> None:
    """`AccountClosed` appended through a kernel of its own on identity's database, and
    nothing else: what a process that died right after the append leaves behind."""
    client, db = await database(settings)
    kernel = mongo_kernel(
        db, producer="identity", registry=identity_registry(), keyring=settings.master_keyring()
    )
    try:
        version = await kernel.store.stream_version(user_id)
        closed = NewEvent(
            AccountClosed(), subject_id=user_id, actor=Actor(id=user_id, role="client")
        )
        await kernel.repository.append(user_id, version, [closed])
        account = await db["users"].find_one({"_id": user_id})
        assert account is not None and account["status"] == "active"  # the read model missed it
    finally:
        await kernel.close()
        await client.close()


async def test_a_close_the_read_model_missed_refuses_the_token_after_a_restart(infra) -> None:
    settings = identity_settings(infra)
    async with running(settings, keep_database=True) as first:
        user = await first.user_with_token()
        me = await first.client.get("/users/me", headers=user["auth"])
        assert me.status_code == 200, me.text

    await append_close_as_a_crash_leaves_it(settings, user["user_id"])

    async with running(settings) as second:

        async def status_of_the_token() -> int:
            return (await second.client.get("/users/me", headers=user["auth"])).status_code

        await eventually(status_of_the_token, until=lambda status: status == 401, timeout=20)
        assert_problem(
            await second.client.get("/users/me", headers=user["auth"]), 401, "invalid-token"
        )
        account = await second.db["users"].find_one({"_id": user["user_id"]})
        assert account is not None and account["status"] == "closed"
        refresh = await second.client.post(
            "/auth/refresh", json={"refresh_token": user["refresh_token"]}
        )
        assert_problem(refresh, 401, "invalid-refresh-token")


async def history(svc: Running) -> None:
    """Registrations, corrections, a close, an erasure, a held erasure, a freed email re-used."""
    await svc.user_with_token(business={"company_name": "Acme SARL"})
    await svc.staff("admin")
    moved = await svc.user_with_token()
    new_email = f"moved.{moved['user_id'][:8]}@example.org"
    response = await svc.client.patch(
        "/users/me",
        headers=moved["auth"],
        json={"email": new_email, "name": "Moved", "current_password": moved["password"]},
    )
    assert response.status_code == 200, response.text
    await svc.register(email=moved["email"])  # the freed address, someone else's now
    closing = await svc.user_with_token()
    closed = await svc.client.request(
        "DELETE",
        "/users/me",
        headers=closing["auth"],
        json={"current_password": closing["password"]},
    )
    assert closed.status_code == 204, closed.text
    erased, held = await svc.register(), await svc.register()
    await svc.erase(erased["user_id"])
    await svc.erase(held["user_id"], held=["contact"])
    await svc.erased_events(erased["user_id"])
    await svc.erased_events(held["user_id"])


async def caught_up(svc: Running) -> None:
    async def projections() -> str:
        return str((await svc.client.get("/readyz")).json()["checks"].get("projections"))

    await eventually(projections, until=lambda detail: f"{PROJECTION} lag 0" in detail)


async def read_models(db: AsyncDatabase[Any]) -> dict[str, list[dict[str, Any]]]:
    """Every document of the read models, whole: nothing is left out of the comparison. The
    only time in them, `created_at`, is the registration event's `occurred_at` (not the time
    of the write), and an email record keeps `reserved_at` only while it is pending."""
    return {name: [doc async for doc in db[name].find({}).sort("_id")] for name in READ_MODELS}


async def test_read_models_dropped_with_their_checkpoint_are_rebuilt_identical(infra) -> None:
    settings = identity_settings(infra)
    async with running(settings, keep_database=True) as first:
        await history(first)
        await caught_up(first)
        before = await read_models(first.db)
    assert len(before["users"]) == 6  # the erased account is gone
    assert {doc["status"] for doc in before["users"]} == {"active", "closed"}

    client, db = await database(settings)
    try:
        for name in READ_MODELS:
            await db.drop_collection(name)
        await db[PROJECTION_STATE].delete_one({"_id": PROJECTION})
        assert await read_models(db) == {name: [] for name in READ_MODELS}
    finally:
        await client.close()

    async with running(settings) as second:
        rebuilt = await eventually(
            lambda: read_models(second.db), until=lambda found: found == before, timeout=30
        )
        assert rebuilt == before

"""Failed logins are throttled per account and per client address: 429 with Retry-After, the
same for unknown emails, and a correct password does not get through a throttled account.

The app is shared by the module, its throttle counters too: every test uses accounts and client
addresses of its own (`address()`), so none depends on what another left behind.
"""

from __future__ import annotations

import ipaddress
import secrets

import httpx
import pytest

from mmgen.identity.testing import Running, assert_problem, passphrase, unique_email

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDENTITY_SETTINGS = {
    "login_max_failures_per_account": 3,
    "login_max_failures_per_address": 6,
    "login_failure_window_seconds": 600,
}


def address() -> str:
    """A client address no other test uses: random in the IPv6 documentation prefix."""
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | secrets.randbits(96)))


def from_address(svc: Running, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=svc.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://identity.test")


async def fail(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/token", json={"email": email, "password": passphrase()})


async def test_account_throttle(svc: Running) -> None:
    user = await svc.register()
    async with from_address(svc, address()) as client:
        for _ in range(3):
            assert_problem(await fail(client, user["email"]), 401, "invalid-credentials")
        throttled = await fail(client, user["email"])
        problem = assert_problem(throttled, 429, "too-many-attempts")
        retry_after = int(throttled.headers["retry-after"])
        assert 0 < retry_after <= 600 and problem["retry_after"] == retry_after
    # The right password from another address is throttled too: the account is under attack.
    async with from_address(svc, address()) as client:
        right = await client.post(
            "/auth/token", json={"email": user["email"], "password": user["password"]}
        )
        assert_problem(right, 429, "too-many-attempts")
    # Other accounts are not affected.
    other = await svc.register()
    async with from_address(svc, address()) as client:
        ok = await client.post(
            "/auth/token", json={"email": other["email"], "password": other["password"]}
        )
        assert ok.status_code == 200


async def test_unknown_email_is_throttled_the_same(svc: Running) -> None:
    ghost = unique_email("ghost")
    async with from_address(svc, address()) as client:
        for _ in range(3):
            assert_problem(await fail(client, ghost), 401, "invalid-credentials")
        assert_problem(await fail(client, ghost), 429, "too-many-attempts")


async def test_address_throttle(svc: Running) -> None:
    victims = [await svc.register() for _ in range(3)]
    async with from_address(svc, address()) as client:
        # Spraying: two failures on each of three accounts (under the account limit).
        for victim in victims:
            for _ in range(2):
                assert_problem(await fail(client, victim["email"]), 401, "invalid-credentials")
        blocked = await client.post(
            "/auth/token",
            json={"email": victims[0]["email"], "password": victims[0]["password"]},
        )
        assert_problem(blocked, 429, "too-many-attempts")
        assert int(blocked.headers["retry-after"]) > 0
    # The same account from a clean address signs in: only the address was throttled.
    async with from_address(svc, address()) as client:
        ok = await client.post(
            "/auth/token",
            json={"email": victims[0]["email"], "password": victims[0]["password"]},
        )
        assert ok.status_code == 200, ok.text


async def test_success_resets_the_account_counter(svc: Running) -> None:
    user = await svc.register()
    async with from_address(svc, address()) as client:
        for _ in range(2):
            await fail(client, user["email"])
        ok = await client.post(
            "/auth/token", json={"email": user["email"], "password": user["password"]}
        )
        assert ok.status_code == 200
    async with from_address(svc, address()) as client:
        for _ in range(2):
            assert_problem(await fail(client, user["email"]), 401, "invalid-credentials")


async def test_throttle_store_holds_no_email_or_address(svc: Running) -> None:
    user = await svc.register()
    ghost = unique_email("ghost")
    sender = address()
    async with from_address(svc, sender) as client:
        for email in (user["email"], ghost):
            assert_problem(await fail(client, email), 401, "invalid-credentials")
    accounts = svc.identity.accounts
    (_, [user_key, address_key]), (_, [ghost_key, _]) = (
        accounts.throttle_keys(email, sender) for email in (user["email"], ghost)
    )
    failures = svc.identity.adapters.db["login_failures"]
    counted = {doc["_id"]: doc["count"] async for doc in failures.find({})}
    # This test's failures are counted, one per account and both for the address...
    assert {k: counted.get(k) for k in (user_key, ghost_key, address_key)} == {
        user_key: 1,
        ghost_key: 1,
        address_key: 2,
    }
    # ...and nothing in the store is an email or an address in clear.
    text = repr([doc async for doc in failures.find({})]).lower()
    for clear in (user["email"], ghost, sender):
        assert clear.lower() not in text
    assert "@example.org" not in text and "2001:db8" not in text

"""Failed logins are throttled per account and per client address: 429 with Retry-After, the
same for unknown emails, and a correct password does not get through a throttled account."""

from __future__ import annotations

import ipaddress
import secrets

import httpx
import pytest

from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running, passphrase, unique_email

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDENTITY_SETTINGS = {
    "login_max_failures_per_account": 3,
    "login_max_failures_per_address": 6,
    "login_failure_window_seconds": 600,
    # Past a limit the next attempt waits this long: far longer than a slow machine takes
    # between two attempts here, so what is refused here stays refused.
    "login_delay_base_seconds": 300,
}


def address() -> str:
    """A client address no other test uses (the throttle counts per address)."""
    return str(ipaddress.IPv4Address("10.0.0.0") + secrets.randbelow(2**24))


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
    user, client_address = await svc.register(), address()
    async with from_address(svc, client_address) as client:
        assert_problem(await fail(client, user["email"]), 401, "invalid-credentials")
    docs = [doc async for doc in svc.db["login_failures"].find({})]
    assert len(docs) >= 2  # this test's account and address, at least
    text = repr(docs)
    assert user["email"] not in text and "@example.org" not in text
    assert client_address not in text

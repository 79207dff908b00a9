"""Sign-in throttling that holds under a burst: 50 parallel wrong passwords hash at most the
limit, `X-Forwarded-For` counts only from the trusted gateway, and the owner signs in once the
attacker's delay has passed — a delay, not a lock."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from mmgen.identity.adapters.hashing import PasswordHashing
from mmgen.identity.bootstrap import bootstrap
from mmgen.identity.entrypoints.app import app_for
from mmgen.runtime.testing import assert_problem, eventually, running_app
from services.identity.tests.identity_kit import (
    Running,
    identity_settings,
    passphrase,
    unique_email,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The first delay past a limit: the whole burst must land within it (a 50-request burst on a
#: loaded 2-core machine has taken more than 3 s), and the owner waits it out at the end.
ACCOUNT_LIMIT, ADDRESS_LIMIT, DELAY = 5, 8, 10
GATEWAY = "192.0.2.10"


class CountingHashing(PasswordHashing):
    """Real argon2id; counts the verifications (what a throttle must spare)."""

    def __init__(self, **parameters: int) -> None:
        super().__init__(**parameters)
        self.verified = 0

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.verified += 1
        return await super().verify(password_hash, password)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def throttled(infra: Any) -> AsyncIterator[tuple[Running, CountingHashing]]:
    settings = identity_settings(
        infra,
        login_max_failures_per_account=ACCOUNT_LIMIT,
        login_max_failures_per_address=ADDRESS_LIMIT,
        login_delay_base_seconds=DELAY,
        trusted_proxies=(GATEWAY,),
    )
    hashing = CountingHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    app = app_for(bootstrap(settings, hashing=hashing))
    async with running_app(app, base_url="http://identity.test") as (_, client):
        yield Running(app, client, settings), hashing


def random_address() -> str:
    return str(ipaddress.IPv4Address("10.0.0.0") + secrets.randbelow(2**24))


def client_at(svc: Running, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=svc.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://identity.test")


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post(
        "/auth/token", json={"email": email, "password": password}, headers=headers
    )


async def test_a_burst_hashes_at_most_the_limit_and_the_owner_still_signs_in(
    throttled: tuple[Running, CountingHashing],
) -> None:
    svc, hashing = throttled
    owner = await svc.register()
    before = hashing.verified
    async with client_at(svc, random_address()) as attacker:
        burst = await asyncio.gather(
            *(sign_in(attacker, owner["email"], passphrase()) for _ in range(50))
        )
    statuses = sorted(response.status_code for response in burst)
    assert statuses == [401] * ACCOUNT_LIMIT + [429] * (50 - ACCOUNT_LIMIT), statuses
    assert hashing.verified - before == ACCOUNT_LIMIT, "every refused attempt was spared"
    for response in burst:
        if response.status_code == 429:
            assert 0 < int(response.headers["retry-after"]) <= DELAY

    # The owner, from their own address: a short wait, then in (refused asks do not add to it).
    async with client_at(svc, random_address()) as own:
        first = await sign_in(own, owner["email"], owner["password"])
        if first.status_code == 429:
            assert int(first.headers["retry-after"]) <= DELAY

        async def attempt() -> int:
            return (await sign_in(own, owner["email"], owner["password"])).status_code

        assert await eventually(attempt, until=lambda s: s == 200, timeout=DELAY + 15, interval=0.5)
    assert hashing.verified - before <= ACCOUNT_LIMIT + 2  # the owner's own attempts only


async def test_a_rotating_forwarded_for_from_an_untrusted_address_changes_nothing(
    throttled: tuple[Running, CountingHashing],
) -> None:
    svc, _ = throttled
    async with client_at(svc, random_address()) as spoofer:
        for _ in range(ADDRESS_LIMIT):
            response = await sign_in(
                spoofer, unique_email("ghost"), passphrase(), forwarded_for=random_address()
            )
            assert_problem(response, 401, "invalid-credentials")
        refused = await sign_in(
            spoofer, unique_email("ghost"), passphrase(), forwarded_for=random_address()
        )
        assert_problem(refused, 429, "too-many-attempts")


async def test_behind_the_trusted_gateway_each_client_is_counted_on_its_own(
    throttled: tuple[Running, CountingHashing],
) -> None:
    svc, _ = throttled
    async with client_at(svc, GATEWAY) as gateway:
        # Many clients behind one gateway: none is throttled for the others' failures.
        for _ in range(ADDRESS_LIMIT + 4):
            response = await sign_in(
                gateway, unique_email("ghost"), passphrase(), forwarded_for=random_address()
            )
            assert_problem(response, 401, "invalid-credentials")
        # One client behind it is, whatever it prepends to the header.
        client = random_address()
        for _ in range(ADDRESS_LIMIT):
            forged = f"{random_address()}, {client}"
            await sign_in(gateway, unique_email("ghost"), passphrase(), forwarded_for=forged)
        refused = await sign_in(
            gateway, unique_email("ghost"), passphrase(), forwarded_for=f"1.2.3.4, {client}"
        )
        assert_problem(refused, 429, "too-many-attempts")

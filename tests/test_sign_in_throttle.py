"""Sign-in throttling that holds against the running identity (issue 14): 50 parallel wrong
passwords for one account check at most the per-account limit, a rotating `X-Forwarded-For`
from an untrusted peer changes nothing, and the owner signs in after the burst (a delay, not a
lock).

"Checked" is seen from outside: a checked wrong password is a 401 `invalid-credentials`, an
attempt refused before its password is checked a 429 `too-many-attempts` — and identity's
`/metrics` counts the same 401s on `/auth/token`. Each party connects from an address of its
own in 127.0.0.0/8 (the TCP peer is the client: the stack trusts no proxy), so the other tests
signing in from 127.0.0.1 are not slowed by the attacker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from typing import Any

import httpx

from mmgen.platform.http import service_client
from mmgen.runtime.testing import assert_problem
from tests import metrics, people

#: identity's defaults, which the session's stack keeps (`IDENTITY_LOGIN_MAX_FAILURES_PER_*`).
ACCOUNT_LIMIT, ADDRESS_LIMIT = 5, 50
#: The first delay past a limit, as the session's stack sets it (`tests/conftest.py`): one more
#: attempt is checked after each delay, so the burst must land within the first.
DELAY_S = 10.0
#: What a loaded machine adds to the owner's wait (the delay itself is told in Retry-After).
OWNER_SLACK_S = 30.0
TOKEN = ("POST", "/auth/token")


def peer() -> str:
    """A loopback address of its own (127.0.0.0/8 all reaches this machine)."""
    return str(ipaddress.IPv4Address("127.0.0.0") + 256 + secrets.randbelow(2**24 - 512))


def client_from(address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return service_client(60.0, transport=transport)


def random_public_address() -> str:
    return str(ipaddress.IPv4Address("11.0.0.0") + secrets.randbelow(2**24))


async def sign_in(
    http: httpx.AsyncClient, identity: str, email: str, password: str, forwarded: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"email": email, "password": password}
    return await http.post(f"{identity}/auth/token", json=body, headers=headers)


def checked(exposition: str) -> float:
    """Answers 401 on `/auth/token`: attempts whose password was checked (and was wrong)."""
    method, route = TOKEN
    return metrics.total(
        exposition, "http_requests_total", method=method, route=route, status="401"
    )


def delays_within(seconds: float) -> int:
    """Attempts past the limit a throttle may check in `seconds`: one after each delay, the
    delays doubling from `DELAY_S` (0 for a burst within the first, as it is unless the machine
    is very loaded)."""
    passed, waited = 0, DELAY_S
    while waited <= seconds:
        passed, waited = passed + 1, waited + DELAY_S * 2 ** (passed + 1)
    return passed


def assert_refusals(burst: list[httpx.Response], limit: int, longest: float = DELAY_S) -> None:
    """At most `limit` checked (401 `invalid-credentials`), every other a 429 with a delay of
    at most `longest`."""
    statuses = [r.status_code for r in burst]
    assert statuses.count(401) <= limit, statuses
    assert statuses.count(429) == len(burst) - statuses.count(401), statuses
    for response in burst:
        slug = "invalid-credentials" if response.status_code == 401 else "too-many-attempts"
        assert_problem(response, response.status_code, slug)
        if response.status_code == 429:
            assert 0 < int(response.headers["retry-after"]) <= longest


async def test_a_burst_checks_at_most_the_limit_and_the_owner_still_signs_in(
    system: Any,
) -> None:
    identity = system.url("identity")
    email, password = f"owner-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
    body = {"email": email, "password": password, "name": "Olga Owner", "role": "creator"}
    async with client_from(peer()) as own:
        await people.register(own, identity, body)
        before = checked(await metrics.read(own, identity))

        # The attacker, from an address of its own, 50 wrong passwords at once, each claiming
        # to come from somewhere else.
        async with client_from(peer()) as attacker:
            started = time.monotonic()
            burst = await asyncio.gather(
                *(
                    sign_in(
                        attacker,
                        identity,
                        email,
                        secrets.token_urlsafe(12),
                        forwarded=random_public_address(),
                    )
                    for _ in range(50)
                )
            )
        extra = delays_within(time.monotonic() - started)
        limit = ACCOUNT_LIMIT + extra
        assert_refusals(burst, limit, longest=DELAY_S * 2**extra)
        after = checked(await metrics.read(own, identity))
        assert after - before <= limit, f"{after - before} wrong passwords were checked"

        # The owner, from their own address: waits out the delay, then is in.
        deadline = time.monotonic() + DELAY_S * 2**extra + OWNER_SLACK_S
        while True:
            attempt = await sign_in(own, identity, email, password)
            if attempt.status_code == 200:
                break
            assert attempt.status_code == 429, attempt.text  # a delay, never a lock
            assert time.monotonic() < deadline, "the owner could not sign in after the burst"
            wait = float(attempt.headers["retry-after"])
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        assert attempt.json()["access_token"]


async def test_a_rotating_forwarded_for_from_an_untrusted_peer_changes_nothing(
    system: Any,
) -> None:
    identity = system.url("identity")
    tag = secrets.token_hex(4)
    async with client_from(peer()) as spoofer:
        # More wrong passwords than one address may try, each for another (unknown) account
        # and "forwarded for" another address: the peer is what counts.
        burst = await asyncio.gather(
            *(
                sign_in(
                    spoofer,
                    identity,
                    f"ghost-{tag}-{n}@example.test",
                    secrets.token_urlsafe(12),
                    forwarded=random_public_address(),
                )
                for n in range(ADDRESS_LIMIT + 10)
            )
        )
        assert_refusals(burst, ADDRESS_LIMIT)
        refused = await sign_in(
            spoofer,
            identity,
            f"ghost-{tag}-last@example.test",
            secrets.token_urlsafe(12),
            forwarded=random_public_address(),
        )
        assert refused.status_code == 429, refused.text

    # Another peer is not held back by the spoofer's failures.
    async with client_from(peer()) as other:
        fresh = await sign_in(other, identity, f"ghost-{tag}-x@example.test", "wrong-password-1")
        assert fresh.status_code == 401, fresh.text

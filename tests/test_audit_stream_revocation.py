"""A revoked compliance officer's open `/audit/stream` ends within the bound consent states
(issue 14): `CONSENT_AUDIT_STREAM_RECHECK_SECONDS` (5) plus one second of identity closing the
account (services/consent/README.md).

The officer opens the live tail at the running consent, sees it deliver (an entry of the log,
or its keep-alives), closes their own account at identity (re-authenticating with password and
a fresh TOTP code), and the stream must end on its own — the test never closes it. The clock
starts when identity has answered the closure.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from mmgen.platform.http import service_client
from tests import people
from tests.officers import compliance_officer

#: The README's bound: the recheck interval plus one second.
BOUND_S = 5.0 + 1.0
#: What the loaded 2-core machine adds to the bound: identity's event reaching consent over the
#: broker, and the HTTP round trips (measured under the full suite: well under a second).
SLACK_S = 2.0


async def test_a_closed_officers_open_stream_ends_within_the_stated_bound(system: Any) -> None:
    identity, consent = system.url("identity"), system.url("consent")
    async with service_client(httpx.Timeout(30.0, read=60.0)) as http:
        officer = await compliance_officer(http, system)
        ended = asyncio.Event()
        received: list[str] = []

        async def follow() -> None:
            async with http.stream(
                "GET", f"{consent}/audit/stream", headers=officer.audit_headers()
            ) as stream:
                assert stream.status_code == 200, await stream.aread()
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    received.append(line)
            ended.set()

        reader = asyncio.create_task(follow())
        try:
            deadline = time.monotonic() + 15
            while not received:
                assert not reader.done(), reader.exception()
                assert time.monotonic() < deadline, "the stream delivered nothing"
                await asyncio.sleep(0.05)
            # Open and delivering for longer than one recheck: only the revocation ends it.
            await asyncio.sleep(BOUND_S)
            assert not ended.is_set(), received

            closed = await http.request(
                "DELETE",
                f"{identity}/users/me",
                headers=people.bearer(officer.token),
                json={
                    "current_password": officer.password,
                    "totp": people.AUTHENTICATORS[(identity, officer.email)].code(),
                },
            )
            assert closed.status_code == 204, closed.text
            closed_at = time.monotonic()
            await asyncio.wait_for(ended.wait(), timeout=BOUND_S + SLACK_S + 30)
            took = time.monotonic() - closed_at
            assert took <= BOUND_S + SLACK_S, f"the stream ended {took:.1f} s after the closure"
            await reader
        finally:
            reader.cancel()

        # The same token opens no new stream.
        again = await http.get(f"{consent}/audit/stream", headers=officer.audit_headers())
        assert again.status_code == 401, again.text
        assert again.headers["content-type"].startswith("application/problem+json")

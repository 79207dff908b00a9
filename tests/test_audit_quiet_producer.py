"""Issue 10, acceptance: a producer's last events lost with the broker, and then silence.

Identity writes; consent is paused (SIGSTOP) so what identity publishes is held only by the
broker; the broker restarts empty; then nothing more is written anywhere. No later event will
ever reveal the hole: only identity's announced head does. Within 30 s the log must hold every
identity event exactly once, and consent must refuse the token of an account closed just
before the restart (its revocation travelled in the lost events too).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections import Counter
from typing import Any

from pymongo import AsyncMongoClient

from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import audit_entries, compliance_officer, new_password

BOUND_S = 30.0


async def test_a_quiet_producers_lost_tail_is_repaired_and_its_revocation_holds(
    own_broker_stack: Any, infra: Infra
) -> None:
    stack = own_broker_stack
    identity, consent = stack.url("identity"), stack.url("consent")
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    identity_db = mongo[stack.database("identity")]  # read only: the source of truth

    async def last_seq() -> int:
        doc = await identity_db["events_counters"].find_one({"_id": "identity"})
        return int(doc["seq"]) if doc else 0

    async def relay_checkpoint() -> int:
        doc = await identity_db["relay_state"].find_one({"_id": "identity"})
        return int(doc.get("checkpoint", 0)) if doc else 0

    http = service_client(30.0)
    paused = False
    try:

        async def register() -> tuple[str, str]:
            """A new client: (password, token)."""
            email, pw = f"q-{secrets.token_hex(5)}@example.test", new_password()
            body = {"email": email, "password": pw, "name": "Quiet", "role": "client"}
            _, token = await people.register(http, identity, body)
            return pw, token

        async def consent_accepts(token: str) -> bool:
            response = await http.get(
                f"{consent}/consents/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code in (200, 401), response.text
            return response.status_code == 200

        officer = await compliance_officer(http, stack)

        async def consumers_of(service: str) -> list[str]:
            """The service's consumer metrics and readiness (what a failure needs explained)."""
            metrics = (await http.get(f"{service}/metrics")).text.splitlines()
            ready = (await http.get(f"{service}/readyz")).text
            wanted = ("mmgen_events_consumer_", "mmgen_audit_")
            return [m for m in metrics if m.startswith(wanted)] + [ready]

        async def identity_seqs_in_log() -> Counter[int]:
            entries = await audit_entries(http, consent, officer.token, producer="identity")
            return Counter(int(e["producer_seq"]) for e in entries)

        closing_password, closing_token = await register()
        for _ in range(3):
            await register()
        deadline = time.monotonic() + 60
        while (
            not await consent_accepts(closing_token)
            or len(await identity_seqs_in_log()) < await last_seq()
        ):
            assert time.monotonic() < deadline, "the stack did not settle"
            await asyncio.sleep(0.2)

        # consent falls behind; identity writes, closes an account, and publishes it all.
        os.kill(stack.pid("consent"), signal.SIGSTOP)
        paused = True
        for _ in range(3):
            await register()
        closed = await http.request(
            "DELETE",
            f"{identity}/users/me",
            headers={"Authorization": f"Bearer {closing_token}"},
            json={"current_password": closing_password},
        )
        assert closed.status_code in (200, 202, 204), closed.text
        target = await last_seq()
        deadline = time.monotonic() + 20
        while await relay_checkpoint() < target:
            assert time.monotonic() < deadline, "identity did not publish its events"
            await asyncio.sleep(0.1)

        # The broker goes and comes back empty; consent resumes; nothing more is written.
        stack.stop_broker()
        stack.start_broker()
        restarted = time.monotonic()
        os.kill(stack.pid("consent"), signal.SIGCONT)
        paused = False

        while True:
            held = await identity_seqs_in_log()
            refused = not await consent_accepts(closing_token)
            if set(held) >= set(range(1, target + 1)) and refused:
                break
            if time.monotonic() - restarted >= BOUND_S:
                raise AssertionError(
                    f"after {BOUND_S} s: log holds {len(set(held))} of {target}, "
                    f"token refused: {refused}; consent's consumers: {await consumers_of(consent)}"
                )
            await asyncio.sleep(0.25)
        assert await last_seq() == target  # nothing more was written anywhere
        assert all(count == 1 for count in held.values()), "an entry is in the log twice"
    finally:
        if paused:
            os.kill(stack.pid("consent"), signal.SIGCONT)
        await http.aclose()
        await mongo.close()

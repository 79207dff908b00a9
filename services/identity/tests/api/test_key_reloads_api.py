"""Unknown `kid`s cannot make identity hammer its database nor stall token issuance: 500 tokens
with random kids cost one reload of the key ring, and tokens are issued while it runs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from mmgen.identity.adapters.hashing import service_secret
from mmgen.platform.auth import SigningKey, issue_token
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running, bearer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_500_random_kids_cost_one_reload_and_issuance_goes_on(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring: Any = svc.identity.keyring
    real_reload = ring.reload
    calls, in_reload, release = 0, asyncio.Event(), asyncio.Event()

    async def held_reload() -> None:
        """Counts reloads; holds each until released, as a slow database would."""
        nonlocal calls
        calls += 1
        in_reload.set()
        await release.wait()
        await real_reload()

    monkeypatch.setattr(ring, "reload", held_reload)

    def stranger() -> str:
        key = SigningKey.generate(kid=f"k-{uuid.uuid4().hex}")
        return issue_token(key, subject=str(uuid.uuid4()), role="admin")

    flood = [
        asyncio.create_task(svc.client.get("/users/me", headers=bearer(stranger())))
        for _ in range(500)
    ]
    await asyncio.wait_for(in_reload.wait(), timeout=30)

    # While the reload hangs, identity still issues tokens (they need the signing key only).
    secret = service_secret(svc.identity.service_credentials_key, "retention")
    issued = await asyncio.wait_for(
        svc.client.post("/auth/service-token", json={"service": "retention", "secret": secret}),
        timeout=30,
    )
    assert issued.status_code == 200, issued.text
    assert not release.is_set()
    principal = await svc.identity.verifier.verify(issued.json()["access_token"])
    assert principal.subject_id == "retention"

    release.set()
    for response in await asyncio.gather(*flood):
        assert_problem(response, 401, "invalid-token")
    assert calls == 1, f"{calls} reloads for 500 unknown kids"

    # A malformed kid is refused without any lookup at all.
    garbage = SigningKey.generate(kid="../" * 30)
    response = await svc.client.get(
        "/users/me", headers=bearer(issue_token(garbage, subject="x", role="admin"))
    )
    assert_problem(response, 401, "invalid-token")
    assert calls == 1

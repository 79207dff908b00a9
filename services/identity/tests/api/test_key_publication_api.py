"""A rotated-in key is published before it signs: a service that refreshed its JWKS cache in
between verifies the first tokens of the new key without fetching again (no 401 while caches
catch up), and until the switch identity keeps signing with the old key."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import jwt
import pytest

from mmgen.platform.auth import JwksKeySet, TokenVerifier
from mmgen.runtime.testing import eventually
from services.identity.tests.identity_kit import Running

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUBLISH_SECONDS = 3
IDENTITY_SETTINGS = {"signing_key_publish_seconds": PUBLISH_SECONDS}


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_the_next_key_is_in_the_jwks_before_it_signs(svc: Running) -> None:
    admin = await svc.staff("admin")
    user = await svc.user_with_token()
    old_kid = kid_of(user["access_token"])

    rotation = (await svc.client.post("/admin/signing-keys/rotate", headers=admin["auth"])).json()
    new_kid = rotation["kid"]
    signs_from = datetime.fromisoformat(rotation["signs_from"])
    assert rotation["previous_kid"] == old_kid and new_kid != old_kid
    assert signs_from > datetime.now(UTC)
    # Asking again while one is scheduled schedules no other.
    again = (await svc.client.post("/admin/signing-keys/rotate", headers=admin["auth"])).json()
    assert again["kid"] == new_kid

    # A service refreshes its cache now (identity's JWKS over HTTP) — and never again soon.
    transport = httpx.ASGITransport(app=svc.app)
    client = httpx.AsyncClient(transport=transport, base_url="http://identity.test")
    keys = JwksKeySet(
        "http://identity.test/.well-known/jwks.json",
        client=client,
        min_refresh_interval=3600,
        max_age=3600,
    )
    verifier = TokenVerifier(
        keys, issuer=svc.settings.jwt_issuer, audience=svc.settings.jwt_audience
    )
    try:
        await keys.refresh()
        assert set(keys.cached_kids()) >= {old_kid, new_kid}
        # Until the switch, identity signs with the old key.
        early = await svc.login(user["email"], user["password"])
        if datetime.now(UTC) < signs_from:
            assert kid_of(early["access_token"]) == old_kid

        async def fresh_kid() -> str:
            return kid_of((await svc.login(user["email"], user["password"]))["access_token"])

        await eventually(fresh_kid, until=lambda kid: kid == new_kid, timeout=PUBLISH_SECONDS + 15)
        late = await svc.login(user["email"], user["password"])
        assert (await verifier.verify(late["access_token"])).subject_id == user["user_id"]
        assert (await verifier.verify(early["access_token"])).subject_id == user["user_id"]
        assert keys.fetch_count == 1, "the new key was known before its first token"
    finally:
        await client.aclose()

    # The switch is recorded in the ring; the old key verifies until its tokens expired.
    async def states() -> tuple[str, str]:
        ring = svc.db["signing_keys"]
        old, new = await ring.find_one({"_id": old_kid}), await ring.find_one({"_id": new_kid})
        return old["state"], new["state"]

    await eventually(states, until=lambda found: found == ("retired", "active"))
    assert (await svc.client.get("/users/me", headers=user["auth"])).status_code == 200

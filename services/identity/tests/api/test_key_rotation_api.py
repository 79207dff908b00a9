"""Signing-key rotation: new tokens carry the new kid, old tokens verify until they expire, the
JWKS publishes both meanwhile and drops the old key afterwards."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from mmgen.events.kafka_testing import wait_until
from mmgen.identity.testing import Running, assert_problem, event_types

pytestmark = pytest.mark.asyncio(loop_scope="module")


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def jwks_kids(svc: Running) -> list[str]:
    return [key["kid"] for key in (await svc.client.get("/.well-known/jwks.json")).json()["keys"]]


async def test_admin_rotation_keeps_old_tokens_valid(svc: Running) -> None:
    admin = await svc.staff("admin")
    user = await svc.user_with_token()
    old_kid = kid_of(user["access_token"])

    response = await svc.client.post("/admin/signing-keys/rotate", headers=admin["auth"])
    assert response.status_code == 200, response.text
    rotation = response.json()
    assert rotation["previous_kid"] == old_kid and rotation["kid"] != old_kid
    assert rotation["previous_verifies_until"]

    assert await jwks_kids(svc) == [rotation["kid"], old_kid]  # new first, old still published
    # The token signed before the rotation still works...
    assert (await svc.client.get("/users/me", headers=user["auth"])).status_code == 200
    # ...and new tokens (logins, refreshes, service tokens) are signed with the new key.
    fresh = await svc.login(user["email"], user["password"])
    assert kid_of(fresh["access_token"]) == rotation["kid"]
    refreshed = await svc.client.post(
        "/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert kid_of(refreshed.json()["access_token"]) == rotation["kid"]
    service = await svc.service_auth("retention")
    assert kid_of(service["Authorization"].split()[1]) == rotation["kid"]
    assert "identity.SigningKeyRotated" in await event_types(svc, stream_id="signing-keys")


async def test_rotation_by_the_cli_client(svc: Running) -> None:
    before = await jwks_kids(svc)
    auth = await svc.service_auth("admin-cli")
    response = await svc.client.post("/internal/signing-keys/rotate", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["previous_kid"] == before[0]
    assert (await jwks_kids(svc))[0] == response.json()["kid"]


async def test_old_key_stops_verifying_after_its_tokens_expired(svc: Running) -> None:
    user = await svc.user_with_token()
    old_kid = kid_of(user["access_token"])
    # Rotate with a one-second overlap (the service uses the longest token lifetime).
    rotation = await svc.identity.adapters.keyring.rotate(timedelta(seconds=1))
    assert rotation.previous_kid == old_kid

    async def old_key_gone() -> bool:
        return old_kid not in await jwks_kids(svc)

    await wait_until(old_key_gone, timeout_s=10, what="the old key to leave the JWKS")
    response = await svc.client.get("/users/me", headers=user["auth"])
    assert_problem(response, 401, "invalid-token")


@pytest.mark.parametrize("role", ["client", "staff", "compliance"])
async def test_only_admins_rotate(svc: Running, role: str) -> None:
    caller = await svc.user_with_token() if role == "client" else await svc.staff(role)
    assert_problem(
        await svc.client.post("/admin/signing-keys/rotate", headers=caller["auth"]),
        403,
        "role-not-allowed",
    )
    retention = await svc.service_auth("retention")
    assert_problem(
        await svc.client.post("/internal/signing-keys/rotate", headers=retention),
        403,
        "service-token-required",
    )

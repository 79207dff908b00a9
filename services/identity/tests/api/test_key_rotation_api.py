"""Signing-key rotation: new tokens carry the new kid, old tokens verify until they expire, the
JWKS publishes both meanwhile and drops the old key afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from mmgen.events.kafka_testing import wait_until
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Not the defaults, so the overlap is seen to follow the settings (longest lifetime + leeway).
IDENTITY_SETTINGS = {
    "access_token_ttl_seconds": 1800,
    "service_token_ttl_seconds": 600,
    "jwt_leeway_seconds": 30,
}


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

    # New first, the old one next (keys of earlier rotations may follow, still verifying).
    assert (await jwks_kids(svc))[:2] == [rotation["kid"], old_kid]
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
    assert "identity.SigningKeyRotated" in await svc.event_types(stream_id="signing-keys")


async def test_the_old_key_verifies_for_the_longest_token_lifetime_plus_leeway(
    svc: Running,
) -> None:
    settings = svc.settings
    overlap = timedelta(
        seconds=max(settings.access_token_ttl_seconds, settings.service_token_ttl_seconds)
        + settings.jwt_leeway_seconds
    )
    assert overlap == timedelta(seconds=1830)
    admin = await svc.staff("admin")
    last_signed = await svc.user_with_token()  # the last token the old key signs
    before = datetime.now(UTC)
    response = await svc.client.post("/admin/signing-keys/rotate", headers=admin["auth"])
    after = datetime.now(UTC)
    rotation = response.json()
    until = datetime.fromisoformat(rotation["previous_verifies_until"])
    assert before + overlap <= until <= after + overlap
    # It outlives that token, leeway included; and the ring stored that very moment.
    expires = datetime.fromtimestamp(
        jwt.decode(last_signed["access_token"], options={"verify_signature": False})["exp"], UTC
    )
    assert expires + timedelta(seconds=settings.jwt_leeway_seconds) <= until
    stored = await svc.db["signing_keys"].find_one({"_id": rotation["previous_kid"]})
    assert stored["state"] == "retired"
    assert abs(stored["verify_until"] - until) < timedelta(milliseconds=1)
    [event] = [
        doc
        for doc in await svc.stored_events(stream_id="signing-keys")
        if doc["data"]["kid"] == rotation["kid"]
    ]
    assert datetime.fromisoformat(event["data"]["previous_verifies_until"]) == until


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
    rotation = await svc.identity.keyring.rotate(timedelta(seconds=1))
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

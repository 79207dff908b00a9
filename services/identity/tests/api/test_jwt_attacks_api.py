"""JWT attacks against identity-issued tokens, through HTTP: every one is the same 401 problem,
and an audited denial that keeps the reason the caller is not told."""

from __future__ import annotations

import pytest

from mmgen.runtime.jwt_attacks import b64, jwt_attacks, parts
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Every anonymous refusal recorded (no sampling), so each attack's reason can be checked.
IDENTITY_SETTINGS = {"denial_sample_seconds": 0}


async def attacks(svc: Running) -> dict[str, str]:
    """The platform's attack list (`mmgen.runtime.jwt_attacks`), from a client's valid token."""
    victim = await svc.user_with_token()
    return jwt_attacks(victim["access_token"], await svc.identity.keyring.signing_key())


async def test_every_attack_is_refused_and_audited(svc: Running) -> None:
    tokens = await attacks(svc)
    before = len(await svc.stored_events(event_type="identity.AccessDenied"))
    details = set()
    for name, token in tokens.items():
        response = await svc.client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        problem = assert_problem(response, 401, "invalid-token")
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        details.add(problem["detail"])
    assert details == {"the access token is invalid"}  # the caller learns nothing more
    after = await svc.stored_events(event_type="identity.AccessDenied")
    assert len(after) - before == len(tokens)
    assert {d["data"]["route"] for d in after[before:]} == {"/users/me"}
    reasons = [d["data"]["reason"] for d in after[before:]]
    assert all(reasons), reasons  # the audit keeps why
    for expected in (
        "not an access token (typ)",
        "lifetime over the maximum",
        "malformed key id",
        "missing claim 'jti'",
        "unknown key id",
        "bad signature",
        "algorithm not allowed",
    ):
        assert expected in reasons


async def test_valid_token_still_works(svc: Running) -> None:
    user = await svc.user_with_token()
    assert (await svc.client.get("/users/me", headers=user["auth"])).status_code == 200


async def test_service_token_cannot_be_upgraded_by_tampering(svc: Running) -> None:
    auth = await svc.service_auth("retention")
    header, claims, signature = parts(auth["Authorization"].split()[1])
    forged = f"{b64(header)}.{b64({**claims, 'sub': 'admin-cli'})}.{signature}"
    assert_problem(
        await svc.client.post(
            "/internal/signing-keys/rotate", headers={"Authorization": f"Bearer {forged}"}
        ),
        401,
        "invalid-token",
    )

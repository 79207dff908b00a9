"""JWT attacks against identity-issued tokens, through HTTP: every one is the same 401 problem,
and an audited denial that keeps the reason the caller is not told."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mmgen.platform.auth import SigningKey, issue_token
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import Running

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Every anonymous refusal recorded (no sampling), so each attack's reason can be checked.
IDENTITY_SETTINGS = {"denial_sample_seconds": 0}


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def hs256(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """The classic key-confusion token: HMAC-SHA256 keyed with the public key's bytes."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def attacks(svc: Running) -> dict[str, str]:
    """Tokens an attacker could build, given a valid client token and the public JWKS."""
    victim = await svc.user_with_token()
    valid = victim["access_token"]
    header, claims, signature = parts(valid)
    kid = header["kid"]
    ring = svc.identity.keyring
    public_pem = (await ring.get(kid)).public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    foreign = SigningKey.generate(kid=kid)  # attacker's own key, claiming identity's kid
    now = int(time.time())

    def foreign_signed(**change: Any) -> str:
        return foreign.sign({**claims, **change}, typ="at+jwt")

    async def ours(body: dict[str, Any], typ: str | None = "at+jwt") -> str:
        """Signed with identity's own key: only the claims or the header are wrong."""
        return (await ring.signing_key()).sign(body, typ=typ)

    escalated = {**claims, "role": "admin"}
    return {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(escalated)}.",
        "alg None unsigned": f"{b64({'alg': 'None', 'kid': kid})}.{b64(claims)}.",
        "HS256 with the public key": hs256(escalated, public_pem, kid),
        "role tampered, signature kept": f"{b64(header)}.{b64(escalated)}.{signature}",
        "subject swapped, signature kept": (
            f"{b64(header)}.{b64({**claims, 'sub': 'x'})}.{signature}"
        ),
        "signature stripped": f"{b64(header)}.{b64(claims)}.",
        "foreign key with identity's kid": foreign_signed(role="admin"),
        "unknown kid": SigningKey.generate(kid="k-unknown").sign(claims, typ="at+jwt"),
        "malformed kid": SigningKey.generate(kid="../../keys").sign(claims, typ="at+jwt"),
        "no kid": jwt.encode(
            claims, foreign.private_key, algorithm="EdDSA", headers={"typ": "at+jwt"}
        ),
        "expired": issue_token(
            await ring.signing_key(),
            subject=victim["user_id"],
            role="client",
            now=datetime.fromtimestamp(now - 3600, tz=UTC),
        ),
        "wrong audience": await ours({**claims, "aud": "another-app"}),
        "wrong issuer": await ours({**claims, "iss": "evil-identity"}),
        "missing exp": await ours({k: v for k, v in claims.items() if k != "exp"}),
        "missing role": await ours({k: v for k, v in claims.items() if k != "role"}),
        "missing jti": await ours({k: v for k, v in claims.items() if k != "jti"}),
        "unknown role": await ours({**claims, "role": "superuser"}),
        "issued in the future": await ours(
            {**claims, "iat": now + 3600, "exp": now + 7200, "nbf": now + 3600}
        ),
        "no typ": await ours(claims, typ=None),
        "typ JWT (not an access token)": await ours(claims, typ="JWT"),
        "lifetime of ten years": await ours({**claims, "iat": now, "exp": now + 3650 * 86400}),
        "not a jwt": "definitely-not-a-token",
        "oversized": "a" * 9000,
    }


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

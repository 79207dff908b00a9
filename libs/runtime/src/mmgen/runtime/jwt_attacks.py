"""The JWT attacks every token verifier must refuse (RFC 8725), as one list.

identity's API test runs them in-process against `/users/me`; the system tests run the same
list against every running service (`tests/test_jwt_attacks.py`). Each attack starts from a
valid access token and identity's signing key: an outsider has neither the key nor a way to
mint claims, so the attacks built with that key are the ones whose only fault is a claim or a
header (a verifier must refuse those even though the signature holds); the others are what
anyone holding one valid token and the public JWKS can build.

    tokens = jwt_attacks(valid_token, signing_key)   # {name: token}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization

from mmgen.platform.auth import SigningKey, issue_token


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A compact JWS's decoded header and claims, and its signature as it stands."""
    header, payload, signature = token.split(".")

    def decode(segment: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
        return loaded

    return decode(header), decode(payload), signature


def hs256(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """The classic key-confusion token: HMAC-SHA256 keyed with the public key's bytes."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def eddsa_without_kid(claims: dict[str, Any], key: SigningKey) -> str:
    """A well-signed access token whose header names no key (`SigningKey.sign` always does)."""
    signing_input = f"{b64({'alg': 'EdDSA', 'typ': 'at+jwt'})}.{b64(claims)}"
    signature = key.private_key.sign(signing_input.encode())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def jwt_attacks(valid: str, signing_key: SigningKey) -> dict[str, str]:
    """Tokens an attacker could build from `valid` (a token `signing_key` issued), by name."""
    header, claims, signature = parts(valid)
    kid = header["kid"]
    public_pem = signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    foreign = SigningKey.generate(kid=kid)  # attacker's own key, claiming identity's kid
    now = int(time.time())

    def ours(body: dict[str, Any], typ: str | None = "at+jwt") -> str:
        """Signed with identity's own key: only the claims or the header are wrong."""
        return signing_key.sign(body, typ=typ)

    def without(name: str) -> dict[str, Any]:
        return {k: v for k, v in claims.items() if k != name}

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
        "foreign key with identity's kid": foreign.sign({**claims, "role": "admin"}, typ="at+jwt"),
        "unknown kid": SigningKey.generate(kid="k-unknown").sign(claims, typ="at+jwt"),
        "malformed kid": SigningKey.generate(kid="../../keys").sign(claims, typ="at+jwt"),
        "no kid": eddsa_without_kid(claims, foreign),
        "expired": issue_token(
            signing_key,
            subject=str(claims["sub"]),
            role=str(claims.get("role", "client")),
            audience=claims.get("aud"),
            now=datetime.fromtimestamp(now - 3600, tz=UTC),
        ),
        "wrong audience": ours({**claims, "aud": "another-app"}),
        "wrong issuer": ours({**claims, "iss": "evil-identity"}),
        "missing exp": ours(without("exp")),
        "missing role": ours(without("role")),
        "missing jti": ours(without("jti")),
        "unknown role": ours({**claims, "role": "superuser"}),
        "issued in the future": ours(
            {**claims, "iat": now + 3600, "exp": now + 7200, "nbf": now + 3600}
        ),
        "no typ": ours(claims, typ=None),
        "typ JWT (not an access token)": ours(claims, typ="JWT"),
        "lifetime of ten years": ours({**claims, "iat": now, "exp": now + 3650 * 86400}),
        "not a jwt": "definitely-not-a-token",
        "oversized": "a" * 9000,
    }


def for_another_service(valid: str, signing_key: SigningKey, service: str) -> str:
    """`valid` re-signed for every audience but `service` (a token leaked from a neighbour)."""
    _, claims, _ = parts(valid)
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    others = [name for name in audience if name != service] or ["another-service"]
    return signing_key.sign({**claims, "aud": others}, typ="at+jwt")

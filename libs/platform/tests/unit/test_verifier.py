"""TokenVerifier against the JWT attacks we must refuse, with an in-process key set."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mmgen.platform.auth import (
    REQUIRED_CLAIMS,
    InMemorySubjectDenylist,
    InvalidTokenError,
    Role,
    SigningKey,
    StaticKeySet,
    SubjectRevokedError,
    TokenVerifier,
    issue_token,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    base: dict[str, Any] = {
        "iss": "mmgen-identity",
        "aud": ["projects", "profiles"],
        "sub": str(uuid.uuid4()),
        "role": "client",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return base


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def denylist() -> InMemorySubjectDenylist:
    return InMemorySubjectDenylist()


@pytest.fixture
def verifier(key: SigningKey, denylist: InMemorySubjectDenylist) -> TokenVerifier:
    return TokenVerifier(StaticKeySet.of(key), audience="projects", leeway=0, denylist=denylist)


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(token)
    assert info.value.status == 401
    return info.value.reason


async def test_a_valid_token_gives_the_principal(key: SigningKey, verifier: TokenVerifier) -> None:
    subject = str(uuid.uuid4())
    token = issue_token(key, subject=subject, role="staff")
    principal = await verifier.verify(token)
    assert principal.subject_id == subject
    assert principal.role is Role.staff
    payload = token.split(".")[1]
    jti = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
    assert principal.token_id == jti
    assert principal.actor() == {"id": subject, "role": "staff"}


async def test_alg_none_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': key.kid})}.{b64json(claims())}."
    assert await refused(verifier, token) == "algorithm not allowed"


@pytest.mark.parametrize("secret_form", ["raw", "pem"])
async def test_hs256_signed_with_the_public_key_is_refused(
    key: SigningKey, verifier: TokenVerifier, secret_form: str
) -> None:
    if secret_form == "raw":
        secret = key.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        secret = key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64json(claims())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert (
        await refused(verifier, f"{signing_input}.{b64url(signature)}") == "algorithm not allowed"
    )


async def test_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    stranger = SigningKey.generate()
    assert await refused(verifier, issue_token(stranger, subject="s", role="client")) == (
        "unknown key id"
    )


async def test_a_token_without_kid_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    import jwt

    token = jwt.encode(claims(), key.private_key, algorithm="EdDSA", headers={"typ": "at+jwt"})
    assert await refused(verifier, token) == "no key id"


async def test_a_known_kid_with_another_keys_signature_is_refused(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    impostor = SigningKey(key.kid, SigningKey.generate().private_key)
    assert await refused(verifier, issue_token(impostor, subject="s", role="admin")) == (
        "bad signature"
    )


async def test_expired_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token = issue_token(key, subject="s", role="client", now=past, ttl=timedelta(minutes=5))
    assert await refused(verifier, token) == "expired"


async def test_wrong_audience_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue_token(key, subject="s", role="client", audience="another-system")
    assert await refused(verifier, token) == "wrong audience"


async def test_wrong_issuer_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue_token(key, subject="s", role="client", issuer="someone-else")
    assert await refused(verifier, token) == "wrong issuer"


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_each_missing_required_claim_is_refused(
    key: SigningKey, verifier: TokenVerifier, claim: str
) -> None:
    body = claims()
    del body[claim]
    assert await refused(verifier, key.sign(body, typ="at+jwt")) == f"missing claim {claim!r}"


async def test_tampered_payload_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    header, _, signature = issue_token(key, subject="s", role="client").split(".")
    forged = f"{header}.{b64json(claims(sub='s', role='admin'))}.{signature}"
    assert await refused(verifier, forged) == "bad signature"


async def test_unknown_role_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    assert (
        await refused(verifier, key.sign(claims(role="superuser"), typ="at+jwt")) == "unknown role"
    )


@pytest.mark.parametrize("role", [7, ["admin"], {"name": "admin"}])
async def test_a_role_claim_that_is_not_a_string_is_refused(
    key: SigningKey, verifier: TokenVerifier, role: object
) -> None:
    assert await refused(verifier, key.sign(claims(role=role), typ="at+jwt")) == "unknown role"


async def test_denylisted_subject_is_refused(
    key: SigningKey, verifier: TokenVerifier, denylist: InMemorySubjectDenylist
) -> None:
    subject = str(uuid.uuid4())
    token = issue_token(key, subject=subject, role="creator")
    assert (await verifier.verify(token)).subject_id == subject
    denylist.deny(subject)
    assert await refused(verifier, token) == "subject revoked"
    denylist.allow(subject)
    assert (await verifier.verify(token)).subject_id == subject


async def test_a_token_issued_before_the_credentials_changed_is_refused(
    key: SigningKey, verifier: TokenVerifier, denylist: InMemorySubjectDenylist
) -> None:
    subject = str(uuid.uuid4())
    changed = datetime.now(UTC).replace(microsecond=0)
    before = issue_token(key, subject=subject, role="client", now=changed - timedelta(seconds=1))
    at = issue_token(key, subject=subject, role="client", now=changed)
    other = issue_token(key, subject=str(uuid.uuid4()), role="client", now=changed)
    denylist.void_before(subject, changed.timestamp())
    with pytest.raises(SubjectRevokedError) as info:
        await verifier.verify(before)
    assert info.value.reason == "issued before the credentials changed"
    assert info.value.detail == InvalidTokenError.GENERIC_DETAIL  # says nothing to the caller
    assert (await verifier.verify(at)).subject_id == subject  # issued at the instant: valid
    assert (await verifier.verify(other)).subject_id != subject  # other subjects unaffected
    denylist.void_before(subject, changed.timestamp() - 60)  # an older change: the later wins
    assert await refused(verifier, before) == "issued before the credentials changed"


async def test_a_token_for_another_service_is_refused_and_one_naming_this_service_passes(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    for elsewhere in (["profiles"], ["identity", "consent", "retention"], "profiles"):
        token = issue_token(key, subject="s", role="client", audience=elsewhere)
        assert await refused(verifier, token) == "wrong audience"
    for here in (["projects"], ["profiles", "projects"], "projects"):
        token = issue_token(key, subject="s", role="client", audience=here)
        assert (await verifier.verify(token)).claims["aud"] == here


async def test_a_default_token_names_every_service_its_role_may_use(key: SigningKey) -> None:
    client = jwt_claims(issue_token(key, subject="s", role="client"))
    assert client["aud"] == ["identity", "projects", "profiles", "consent", "retention"]
    officer = jwt_claims(issue_token(key, subject="s", role="compliance"))
    assert "console" in officer["aud"]


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 9000])
async def test_garbage_is_refused(verifier: TokenVerifier, garbage: str) -> None:
    assert await refused(verifier, garbage) == "malformed token"


# --- RFC 8725: explicit typing, token ids, bounded lifetime, nothing told --------------------


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "id+jwt", "application/jwt", "at+jwt+x", 7])
async def test_a_token_that_is_not_typed_as_an_access_token_is_refused(
    key: SigningKey, verifier: TokenVerifier, typ: object
) -> None:
    import jwt

    headers: dict[str, Any] = {"kid": key.kid}
    if typ is not None:
        headers["typ"] = typ
    token = jwt.encode(claims(), key.private_key, algorithm="EdDSA", headers=headers)
    if typ is None:  # PyJWT adds "JWT" by default: make sure there is no typ at all
        token = jwt.api_jws.encode(
            json.dumps(claims()).encode(), key.private_key, algorithm="EdDSA",
            headers={"kid": key.kid, "typ": None},
        )  # fmt: skip
    assert await refused(verifier, token) == "not an access token (typ)"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_the_access_token_types_are_accepted(
    key: SigningKey, verifier: TokenVerifier, typ: str
) -> None:
    subject = str(uuid.uuid4())
    token = issue_token(key, subject=subject, role="client", typ=typ)
    assert (await verifier.verify(token)).subject_id == subject


async def test_the_platform_issues_typed_tokens_with_an_id(key: SigningKey) -> None:
    import jwt

    token = issue_token(key, subject="s", role="client")
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"}
    assert len(jwt.decode(token, options={"verify_signature": False})["jti"]) >= 16


@pytest.mark.parametrize("jti", ["", 7, None, ["a"], "x" * 201])
async def test_a_token_id_that_is_not_a_short_string_is_refused(
    key: SigningKey, verifier: TokenVerifier, jti: object
) -> None:
    assert await refused(verifier, key.sign(claims(jti=jti), typ="at+jwt")) in (
        "invalid token id",
        "invalid token",  # PyJWT's own check of a non-string jti
        "missing claim 'jti'",  # PyJWT reads a null claim as missing
    )


async def test_a_lifetime_over_the_maximum_is_refused(key: SigningKey) -> None:
    verifier = TokenVerifier(StaticKeySet.of(key), audience="projects", leeway=0, max_lifetime=3600)
    ten_years = issue_token(key, subject="s", role="admin", ttl=timedelta(days=3650))
    assert await refused(verifier, ten_years) == "lifetime over the maximum"
    just_over = issue_token(key, subject="s", role="admin", ttl=timedelta(seconds=3601))
    assert await refused(verifier, just_over) == "lifetime over the maximum"
    at_the_limit = issue_token(key, subject="s", role="admin", ttl=timedelta(seconds=3600))
    assert (await verifier.verify(at_the_limit)).subject_id == "s"


class CountingKeySet:
    """A key set that counts lookups (a malformed `kid` must not cost one)."""

    def __init__(self, key: SigningKey) -> None:
        self.inner = StaticKeySet.of(key)
        self.lookups = 0

    async def get(self, kid: str) -> Any:
        self.lookups += 1
        return await self.inner.get(kid)


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "k" * 65, "kid with spaces", "ключ", "a\x00b", "k/1"]
)
async def test_a_malformed_kid_is_refused_before_any_lookup(key: SigningKey, kid: object) -> None:
    import jwt

    keys = CountingKeySet(key)
    verifier = TokenVerifier(keys, audience="projects", leeway=0)
    token = jwt.encode(
        claims(), key.private_key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert await refused(verifier, token) == "malformed key id"
    assert keys.lookups == 0


async def test_the_answer_never_tells_the_reason(
    key: SigningKey, verifier: TokenVerifier, denylist: InMemorySubjectDenylist
) -> None:
    subject = str(uuid.uuid4())
    token = issue_token(key, subject=subject, role="creator")
    denylist.deny(subject)
    with pytest.raises(InvalidTokenError) as revoked:
        await verifier.verify(token)
    with pytest.raises(InvalidTokenError) as garbage:
        await verifier.verify("a.b.c")
    assert revoked.value.reason == "subject revoked" != garbage.value.reason
    assert revoked.value.detail == garbage.value.detail == "the access token is invalid"
    assert "revoked" not in str(revoked.value)

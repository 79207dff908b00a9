"""JwksKeySet: fetch, cache by kid, refresh on an unknown kid with a rate limit (httpx mock)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from mmgen.platform.auth import (
    InvalidTokenError,
    JwksKeySet,
    SigningKey,
    SigningKeysUnavailableError,
    TokenVerifier,
    issue_token,
    jwks_document,
    parse_jwks,
)

JWKS_URL = "http://identity.test/.well-known/jwks.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Identity:
    """What identity's JWKS endpoint serves; `fail` makes it answer 503."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.hits = 0
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.hits += 1
        assert request.url == JWKS_URL
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json=jwks_document({k.kid: k.public_key for k in self.keys}))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def keyset(identity: Identity, clock: FakeClock, interval: float = 30.0) -> JwksKeySet:
    client = httpx.AsyncClient(transport=httpx.MockTransport(identity.handler))
    return JwksKeySet(JWKS_URL, client=client, min_refresh_interval=interval, clock=clock)


async def test_keys_are_fetched_once_and_served_from_the_cache(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    keys = keyset(identity, clock)
    verifier = TokenVerifier(keys, audience="projects")
    for _ in range(5):
        await verifier.verify(issue_token(key, subject="s", role="client"))
    assert identity.hits == 1
    assert keys.cached_kids() == [key.kid]


async def test_an_unknown_kid_refreshes_and_finds_a_rotated_key(clock: FakeClock) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    identity = Identity(old)
    keys = keyset(identity, clock, interval=0)
    verifier = TokenVerifier(keys, audience="projects")
    await verifier.verify(issue_token(old, subject="s", role="client"))
    identity.keys.append(new)  # identity rotates: the new key signs, the old still verifies
    principal = await verifier.verify(issue_token(new, subject="s2", role="client"))
    assert principal.subject_id == "s2"
    assert identity.hits == 2
    await verifier.verify(issue_token(old, subject="s", role="client"))
    assert identity.hits == 2


async def test_unknown_kids_cannot_make_us_hammer_identity(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    verifier = TokenVerifier(keyset(identity, clock, interval=30), audience="projects")
    await verifier.verify(issue_token(key, subject="s", role="client"))
    assert identity.hits == 1

    for _ in range(50):
        with pytest.raises(InvalidTokenError) as refused:
            await verifier.verify(issue_token(SigningKey.generate(), subject="x", role="admin"))
        assert refused.value.reason == "unknown key id"
    # The first unknown kid was within 30 s of the initial fetch: no refresh at all.
    assert identity.hits == 1

    clock.now += 31
    with pytest.raises(InvalidTokenError) as refused:
        await verifier.verify(issue_token(SigningKey.generate(), subject="x", role="admin"))
    assert refused.value.reason == "unknown key id"
    assert identity.hits == 2  # one refresh, still unknown after it → 401


async def test_concurrent_unknown_kids_share_one_fetch(clock: FakeClock) -> None:
    identity = Identity(SigningKey.generate())
    keys = keyset(identity, clock, interval=30)
    strangers = [SigningKey.generate() for _ in range(20)]
    results = await asyncio.gather(*(keys.get(k.kid) for k in strangers))
    assert results == [None] * 20
    assert identity.hits == 1


async def test_identity_unreachable_is_503_not_401(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    identity.fail = True
    verifier = TokenVerifier(keyset(identity, clock, interval=30), audience="projects")
    token = issue_token(key, subject="s", role="client")
    with pytest.raises(SigningKeysUnavailableError) as info:
        await verifier.verify(token)
    assert info.value.status == 503
    # Within the interval: still unavailable, without another request to identity.
    with pytest.raises(SigningKeysUnavailableError):
        await verifier.verify(token)
    assert identity.hits == 1
    identity.fail = False
    clock.now += 31
    assert (await verifier.verify(token)).subject_id == "s"


async def test_a_withdrawn_key_stops_verifying_once_the_cache_ages(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    keys = keyset(identity, clock, interval=30)
    keys.max_age = 300
    verifier = TokenVerifier(keys, audience="projects")
    token = issue_token(key, subject="s", role="client")
    await verifier.verify(token)
    identity.keys.clear()
    clock.now += 301
    with pytest.raises(InvalidTokenError) as refused:
        await verifier.verify(token)
    assert refused.value.reason == "unknown key id"


async def test_stale_cache_keeps_working_while_identity_is_down(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    keys = keyset(identity, clock, interval=30)
    verifier = TokenVerifier(keys, audience="projects")
    token = issue_token(key, subject="s", role="client")
    await verifier.verify(token)
    identity.fail = True
    clock.now += 1000
    assert (await verifier.verify(token)).subject_id == "s"
    assert keys.last_error is not None


def test_parse_jwks_trusts_only_ed25519_signature_keys() -> None:
    key = SigningKey.generate()
    document: dict[str, Any] = jwks_document({key.kid: key.public_key})
    document["keys"] += [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
        {"kty": "OKP", "crv": "X25519", "x": "AAAA", "kid": "ecdh"},
        {"kty": "OKP", "crv": "Ed25519", "x": "!!", "kid": "broken"},
        {"kty": "OKP", "crv": "Ed25519", "x": key.public_jwk()["x"], "kid": "enc", "use": "enc"},
        "not an object",
    ]
    assert list(parse_jwks(document)) == [key.kid]
    with pytest.raises(ValueError, match="keys"):
        parse_jwks({"nope": []})


async def test_500_concurrent_random_kids_cost_at_most_one_fetch(clock: FakeClock) -> None:
    key = SigningKey.generate()
    identity = Identity(key)
    keys = keyset(identity, clock, interval=30)
    verifier = TokenVerifier(keys, audience="projects")
    await verifier.verify(issue_token(key, subject="s", role="client"))
    clock.now += 31  # the next unknown kid may refresh: all 500 share that one refresh

    async def attempt() -> str:
        token = issue_token(SigningKey.generate(), subject="x", role="admin")
        try:
            await verifier.verify(token)
        except InvalidTokenError as refused:
            return refused.reason
        return "accepted"

    reasons = await asyncio.gather(*(attempt() for _ in range(500)))
    assert set(reasons) == {"unknown key id"}
    assert identity.hits == 2, "one refresh for the whole flood"
    # Meanwhile and after, the known key verifies from the cache.
    assert (await verifier.verify(issue_token(key, subject="s", role="client"))).subject_id == "s"
    assert identity.hits == 2


@pytest.mark.parametrize("kid", ["", "x" * 65, "../jwks", "a b"])
async def test_a_malformed_kid_never_fetches(clock: FakeClock, kid: str) -> None:
    identity = Identity(SigningKey.generate())
    keys = keyset(identity, clock, interval=0)
    assert await keys.get(kid) is None
    assert identity.hits == 0

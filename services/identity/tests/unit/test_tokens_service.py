"""Tokens and sign-in throttling over the fakes: refresh rotation, reuse, expiry, throttles."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from mmgen.events.envelope import Actor
from mmgen.identity.adapters.hashing import service_secret
from mmgen.identity.adapters.sessions import InMemoryRefreshTokenStore
from mmgen.identity.adapters.signing_keys import InMemorySigningKeyRing
from mmgen.identity.adapters.throttle import InMemoryLoginThrottle, ThrottleLimits
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.domain.errors import (
    InvalidCredentialsError,
    LoginThrottledError,
    RefreshTokenInvalidError,
    RefreshTokenReusedError,
    ServiceCredentialsInvalidError,
)
from mmgen.identity.service_layer.accounts import Registration
from mmgen.platform.auth import InvalidTokenError
from mmgen.platform.auth.audiences import AudienceNotAllowedError
from services.identity.tests.identity_kit import (
    memory_identity,
    passphrase,
    stored_events,
    unique_email,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def account(identity: IdentityService) -> tuple[str, str, str]:
    email, password = unique_email(), passphrase()
    user_id = await identity.accounts.register(
        Registration(email=email, password=password, name="Ada", role="client")
    )
    return user_id, email, password


async def test_an_access_token_verifies_on_the_key_ring(identity: IdentityService) -> None:
    user_id, _, _ = await account(identity)
    pair = await identity.tokens.issue_pair(user_id, "client")
    principal = await identity.verifier.verify(pair.access_token)
    assert principal.subject_id == user_id and str(principal.role) == "client"
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == identity.settings.access_token_ttl_seconds


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(
    identity: IdentityService,
) -> None:
    user_id, _, _ = await account(identity)
    first = await identity.tokens.issue_pair(user_id, "client")
    second = await identity.tokens.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(RefreshTokenReusedError):
        await identity.tokens.refresh(first.refresh_token)  # a copy comes back
    with pytest.raises(RefreshTokenInvalidError, match="revoked"):
        await identity.tokens.refresh(second.refresh_token)  # so the owner's stops too
    alarms = await stored_events(identity, "identity.RefreshTokenReuseDetected")
    assert len(alarms) == 1 and alarms[0].subject_id == user_id
    assert alarms[0].data["revoked_tokens"] == 2  # the spent token and its successor


async def test_an_expired_refresh_token_is_refused_and_is_no_reuse() -> None:
    clock = Clock()
    ttl = timedelta(hours=1)
    identity = memory_identity(refresh_tokens=InMemoryRefreshTokenStore(ttl=ttl, clock=clock))
    user_id, _, _ = await account(identity)
    pair = await identity.tokens.issue_pair(user_id, "client")
    clock.now += ttl + timedelta(seconds=1)
    for _ in range(2):  # a client retrying: refused as expired both times
        with pytest.raises(RefreshTokenInvalidError, match="expired"):
            await identity.tokens.refresh(pair.refresh_token)
    store = identity.refresh_tokens
    assert isinstance(store, InMemoryRefreshTokenStore)
    assert store.active(user_id) == 1  # no family revoked


async def test_a_closed_account_gets_no_new_tokens(identity: IdentityService) -> None:
    user_id, _, _ = await account(identity)
    pair = await identity.tokens.issue_pair(user_id, "client")
    await identity.accounts.close(user_id, Actor(id=user_id, role="client"))
    with pytest.raises(RefreshTokenInvalidError):
        await identity.tokens.refresh(pair.refresh_token)


async def test_service_tokens_need_the_service_secret(identity: IdentityService) -> None:
    secret = service_secret(identity.service_credentials_key, "retention")
    token = await identity.tokens.service_token("retention", secret)
    principal = await identity.verifier.verify(token.access_token)
    assert principal.subject_id == "retention" and principal.is_service
    with pytest.raises(ServiceCredentialsInvalidError):
        await identity.tokens.service_token("retention", "guess")
    with pytest.raises(ServiceCredentialsInvalidError):
        await identity.tokens.service_token("stranger", secret)


def audience_of(token: str) -> list[str]:
    return list(jwt.decode(token, options={"verify_signature": False})["aud"])


async def test_a_token_names_the_audiences_asked_within_the_roles_allowance(
    identity: IdentityService,
) -> None:
    user_id, _, _ = await account(identity)
    default = await identity.tokens.issue_pair(user_id, "client")
    assert audience_of(default.access_token) == [
        "identity",
        "projects",
        "profiles",
        "consent",
        "retention",
    ]
    asked = await identity.tokens.issue_pair(user_id, "client", audiences=["projects"])
    assert audience_of(asked.access_token) == ["projects"]
    # A refresh keeps them; identity's own verifier refuses a token not naming identity.
    refreshed = await identity.tokens.refresh(asked.refresh_token)
    assert audience_of(refreshed.access_token) == ["projects"]
    with pytest.raises(InvalidTokenError, match="invalid"):
        await identity.verifier.verify(refreshed.access_token)
    assert (await identity.verifier.verify(default.access_token)).subject_id == user_id


async def test_an_audience_outside_the_allowance_issues_nothing(identity: IdentityService) -> None:
    user_id, _, _ = await account(identity)
    store = identity.refresh_tokens
    assert isinstance(store, InMemoryRefreshTokenStore)
    held = len(store.tokens)
    for asked in (["console"], ["projects", "console"], ["witness"], []):
        with pytest.raises(AudienceNotAllowedError) as refused:
            await identity.tokens.issue_pair(user_id, "client", audiences=asked)
        assert refused.value.refused == tuple(sorted(set(asked) - {"projects"}))
    assert len(store.tokens) == held  # no refresh token either
    officer = await identity.tokens.issue_pair(user_id, "compliance", audiences=["console"])
    assert audience_of(officer.access_token) == ["console"]


async def test_a_service_token_is_issued_for_the_services_asked(
    identity: IdentityService,
) -> None:
    secret = service_secret(identity.service_credentials_key, "retention")
    default = await identity.tokens.service_token("retention", secret)
    assert "console" not in audience_of(default.access_token)
    only = await identity.tokens.service_token("retention", secret, ["projects", "consent"])
    assert audience_of(only.access_token) == ["projects", "consent"]
    with pytest.raises(AudienceNotAllowedError):
        await identity.tokens.service_token("retention", secret, ["console"])
    with pytest.raises(ServiceCredentialsInvalidError):  # credentials are checked first
        await identity.tokens.service_token("retention", "guess", ["console"])


async def test_a_rotated_key_is_published_before_it_signs() -> None:
    clock = Clock()
    ring = InMemorySigningKeyRing(clock=clock)
    await ring.start()
    old = await ring.signing_key()
    rotation = await ring.rotate(timedelta(minutes=30), timedelta(seconds=60))
    assert rotation.previous_kid == old.kid
    assert rotation.signs_from == clock.now + timedelta(seconds=60)
    assert rotation.previous_verifies_until == rotation.signs_from + timedelta(minutes=30)
    # Published at once, but the old key still signs...
    assert [k["kid"] for k in ring.jwks()["keys"]] == [old.kid, rotation.kid]
    assert (await ring.signing_key()).kid == old.kid
    assert await ring.get(rotation.kid) is not None
    # ...and asking again does not schedule another one.
    assert (await ring.rotate(timedelta(minutes=30), timedelta(seconds=60))).kid == rotation.kid
    clock.now += timedelta(seconds=60)
    assert (await ring.signing_key()).kid == rotation.kid
    assert [k["kid"] for k in ring.jwks()["keys"]] == [rotation.kid, old.kid]
    clock.now += timedelta(minutes=30)
    assert [k["kid"] for k in ring.jwks()["keys"]] == [rotation.kid]
    assert await ring.get(old.kid) is None


async def test_a_rotated_key_keeps_verifying_its_tokens(identity: IdentityService) -> None:
    user_id, _, _ = await account(identity)
    before = await identity.tokens.issue_pair(user_id, "client")
    rotation = await identity.tokens.rotate_signing_key(Actor(id="admin-cli", role="service"))
    assert rotation.previous_kid == jwt.get_unverified_header(before.access_token)["kid"]
    assert (await identity.verifier.verify(before.access_token)).subject_id == user_id
    after = await identity.tokens.issue_pair(user_id, "client")
    assert jwt.get_unverified_header(after.access_token)["kid"] == rotation.kid
    assert [k["kid"] for k in identity.keyring.jwks()["keys"]] == [
        rotation.kid,
        rotation.previous_kid,
    ]


# --- throttling of failed sign-ins ----------------------------------------------------------------

LIMITS = ThrottleLimits(window=timedelta(minutes=10), max_per_account=3, max_per_address=5)


def throttled() -> tuple[IdentityService, Clock]:
    clock = Clock()
    return memory_identity(throttle=InMemoryLoginThrottle(LIMITS, clock=clock)), clock


async def test_past_the_limit_attempts_wait_growing_delays_never_a_lock() -> None:
    identity, clock = throttled()
    _, email, password = await account(identity)
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.1")
    with pytest.raises(LoginThrottledError) as throttle:
        await identity.accounts.authenticate(email, password, "198.51.100.2")  # right password
    assert throttle.value.retry_after == 2  # the base delay, not the window
    # The attacker goes on as soon as allowed: each wait doubles.
    waits = []
    for _ in range(4):
        with pytest.raises(LoginThrottledError) as throttle:
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.1")
        waits.append(throttle.value.retry_after)
        clock.now += timedelta(seconds=throttle.value.retry_after)
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.1")
    assert waits == [2, 4, 8, 16]
    # Asking while refused changes nothing: the wait is the same after ten refusals.
    for _ in range(10):
        with pytest.raises(LoginThrottledError) as throttle:
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.1")
    assert throttle.value.retry_after == 32
    # Once the attacker stops, the owner signs in after the current delay, and is clear again.
    clock.now += timedelta(seconds=32)
    await identity.accounts.authenticate(email, password, "198.51.100.2")
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.2")


async def test_delays_are_capped_and_counters_start_again_after_a_quiet_window() -> None:
    clock = Clock()
    limits = ThrottleLimits(
        window=timedelta(minutes=10),
        max_per_account=1,
        max_per_address=100,
        delay_max=timedelta(seconds=60),
    )
    identity = memory_identity(throttle=InMemoryLoginThrottle(limits, clock=clock))
    _, email, password = await account(identity)
    for _ in range(10):  # each after the longest delay: every one is let through
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.9")
        clock.now += timedelta(seconds=61)
    with pytest.raises(InvalidCredentialsError):
        await identity.accounts.authenticate(email, passphrase(), "198.51.100.9")
    with pytest.raises(LoginThrottledError) as throttle:
        await identity.accounts.authenticate(email, password, "198.51.100.9")
    assert throttle.value.retry_after == 60
    clock.now += limits.window
    await identity.accounts.authenticate(email, password, "198.51.100.9")


async def test_unknown_emails_are_throttled_like_known_ones() -> None:
    identity, _ = throttled()
    ghost = unique_email("ghost")
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(ghost, passphrase(), "198.51.100.3")
    with pytest.raises(LoginThrottledError):
        await identity.accounts.authenticate(ghost, passphrase(), "198.51.100.3")


async def test_an_address_spraying_accounts_is_throttled_alone() -> None:
    identity, _ = throttled()
    victims = [await account(identity) for _ in range(3)]
    for _, email, _ in victims:
        for _ in range(2):  # under the account limit, over the address limit in total
            with contextlib.suppress(InvalidCredentialsError, LoginThrottledError):
                await identity.accounts.authenticate(email, passphrase(), "198.51.100.4")
    _, email, password = victims[0]
    with pytest.raises(LoginThrottledError):
        await identity.accounts.authenticate(email, password, "198.51.100.4")
    await identity.accounts.authenticate(email, password, "198.51.100.5")  # another address


async def test_a_success_resets_the_account_counter() -> None:
    identity, _ = throttled()
    _, email, password = await account(identity)
    for _ in range(2):
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.6")
    await identity.accounts.authenticate(email, password, "198.51.100.6")
    for _ in range(2):  # two more failures: still under the limit of three
        with pytest.raises(InvalidCredentialsError):
            await identity.accounts.authenticate(email, passphrase(), "198.51.100.7")
    await identity.accounts.authenticate(email, password, "198.51.100.8")


async def test_a_refresh_keeps_the_sign_in_time_so_it_is_no_new_sign_in() -> None:
    clock = Clock()
    identity = memory_identity(
        refresh_tokens=InMemoryRefreshTokenStore(ttl=timedelta(days=1), clock=clock)
    )
    user_id, _, _ = await account(identity)
    first = await identity.tokens.issue_pair(user_id, "client")
    signed_in = jwt.decode(first.access_token, options={"verify_signature": False})["auth_time"]
    assert abs(signed_in - time.time()) < 60
    clock.now += timedelta(hours=2)
    second = await identity.tokens.refresh(first.refresh_token)
    third = await identity.tokens.refresh(second.refresh_token)
    for pair in (second, third):
        claims = jwt.decode(pair.access_token, options={"verify_signature": False})
        assert claims["auth_time"] == signed_in

"""Sessions expire with the token and when idle; the console's own demands on a token."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from mmgen.console.sessions import (
    InMemorySessionStore,
    SessionTableFullError,
    new_session_id,
    session_key,
)
from mmgen.console.settings import ConsoleSettings
from mmgen.console.signin import SignInRefusedError, check_principal
from mmgen.platform.auth.principal import Principal, Role


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_ends_with_its_token_and_when_idle() -> None:
    clock = Clock()
    store = InMemorySessionStore(idle_seconds=60, max_sessions=10, clock=clock)
    session = await store.open("token", "s1", "compliance", expires_at=clock.now + 300)
    assert await store.get(session.id) is session
    clock.now += 59
    assert await store.get(session.id) is session  # each use keeps it alive
    clock.now += 61
    assert await store.get(session.id) is None
    other = await store.open("token", "s1", "compliance", expires_at=clock.now + 10)
    clock.now += 10
    assert await store.get(other.id) is None
    assert await store.get(None) is None and await store.get("") is None
    assert await store.get("nope") is None


async def test_the_table_is_bounded_and_csrf_is_compared_exactly() -> None:
    store = InMemorySessionStore(idle_seconds=60, max_sessions=1, clock=Clock())
    session = await store.open("token", "s1", "compliance", expires_at=2000.0)
    with pytest.raises(SessionTableFullError):
        await store.open("token", "s2", "compliance", expires_at=2000.0)
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches(session.csrf_token[:-1])
    await store.close(session.id)
    assert await store.count() == 0


def test_the_store_knows_a_session_by_the_hash_of_its_id_only() -> None:
    first, second = new_session_id(), new_session_id()
    assert first != second and len(first) >= 43  # 256 random bits, url-safe
    assert session_key(first) == hashlib.sha256(first.encode()).hexdigest()
    assert first not in session_key(first)


@pytest.mark.parametrize(
    ("role", "amr", "code"),
    [
        (Role.client, ["pwd", "otp"], "role_not_allowed"),
        (Role.admin, ["pwd", "otp"], "role_not_allowed"),
        (Role.compliance, None, "mfa_required"),
        (Role.compliance, ["pwd"], "mfa_required"),
        (Role.compliance, "otp", "mfa_required"),
    ],
)
def test_only_compliance_with_a_second_factor_gets_in(role: Role, amr: object, code: str) -> None:
    claims = {} if amr is None else {"amr": amr}
    with pytest.raises(SignInRefusedError) as refused:
        check_principal(Principal("s1", role, claims))
    assert refused.value.code == code


def test_compliance_with_otp_gets_in() -> None:
    check_principal(Principal("s1", Role.compliance, {"amr": ["pwd", "otp"]}))


def test_settings_pin_valid_keys_only() -> None:
    from mmgen.auditlog.checkpoint import NoteSigner
    from mmgen.auditlog.cosignature import CosignatureSigner

    log = NoteSigner.generate("mmgen.local/audit").verifier().to_string()
    witness = CosignatureSigner.generate("mmgen.local/witness").verifier().to_string()
    settings = ConsoleSettings(
        environment="test", audit_log_key=log, witness_keys=f"{witness}", witness_quorum=1
    )
    assert settings.audit_log_key == log and settings.witness_keys == (witness,)
    assert not settings.secure_cookie
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    assert ConsoleSettings(environment="production", master_key=key).secure_cookie


def test_production_refuses_the_development_master_key() -> None:
    """The key sealing the officers' tokens at rest must be a real one outside the local stack."""
    with pytest.raises(ValueError, match="CONSOLE_MASTER_KEY"):
        ConsoleSettings(environment="production")
    with pytest.raises(ValueError, match="audit-log verifier key"):
        ConsoleSettings(environment="test", audit_log_key="mmgen.local/audit+00000000+AAAA")
    with pytest.raises(ValueError, match="quorum"):
        ConsoleSettings(environment="test", witness_quorum=1)

"""Credential life cycle over the fakes: registration without enumeration, email verification,
password change and reset, re-authentication, TOTP sign-in with recovery codes."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from mmgen.events.envelope import Actor
from mmgen.identity.adapters.mail import InMemoryMailOutbox, MailMessage
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.domain.errors import (
    EmailNotVerifiedError,
    InvalidCredentialsError,
    OneTimeTokenInvalidError,
    PasswordRejectedError,
    ReauthenticationFailedError,
    SecondFactorRequiredError,
    TotpEnrolmentError,
)
from mmgen.identity.service_layer.accounts import Registration
from mmgen.identity.service_layer.credentials import SecondFactor
from mmgen.platform import totp
from services.identity.tests.identity_kit import passphrase, stored_events, unique_email

ADDRESS = "198.51.100.9"
NONE = SecondFactor()


def outbox(identity: IdentityService) -> InMemoryMailOutbox:
    fake = identity.mail_outbox
    assert isinstance(fake, InMemoryMailOutbox)
    return fake


def mails_to(identity: IdentityService, email: str) -> list[MailMessage]:
    return [m for m, _, _ in outbox(identity).messages.values() if m.to == email]


def token_in(message: MailMessage) -> str:
    found = re.search(r"^token: (\S+)$", message.text, re.MULTILINE)
    assert found is not None, message.text
    return found.group(1)


async def register(identity: IdentityService, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "email": unique_email(),
        "password": passphrase(),
        "name": "Ada Lovelace",
        "role": "client",
    }
    values.update(changes)
    await identity.credentials.register(Registration(**values), ADDRESS)
    user_id = await identity.account_records.user_id_for_email(
        identity.accounts.blind_index(values["email"].strip().lower())
    )
    return {**values, "user_id": user_id}


async def verified(identity: IdentityService) -> dict[str, Any]:
    user = await register(identity)
    [mail] = mails_to(identity, user["email"])
    await identity.credentials.verify_email(token_in(mail))
    return user


def code_for(secret: str, offset: int = 0) -> str:
    return totp.hotp(totp.secret_from_text(secret), totp.step_at(time.time()) + offset)


async def with_totp(identity: IdentityService) -> dict[str, Any]:
    user = await verified(identity)
    enrolment = await identity.credentials.enrol_totp(
        user["user_id"], user["password"], NONE, ADDRESS
    )
    await identity.credentials.confirm_totp(user["user_id"], code_for(enrolment.secret))
    return {**user, "secret": enrolment.secret, "recovery_codes": enrolment.recovery_codes}


# --- registration --------------------------------------------------------------------------------


async def test_registering_a_taken_address_answers_alike_and_tells_the_owner(
    identity: IdentityService,
) -> None:
    owner = await register(identity)
    [verification] = mails_to(identity, owner["email"])
    assert "verify your email" in verification.subject
    # The same call succeeds again (no EmailTakenError reaches the caller)...
    again = await register(identity, email=owner["email"].upper(), name="Mallory")
    assert again["user_id"] == owner["user_id"]  # ...and no second account was made
    notices = [m for m in mails_to(identity, owner["email"]) if m is not verification]
    assert [m.subject for m in notices] == [
        "Multimedia Gen: someone tried to register your address"
    ]
    assert "token:" not in notices[0].text


async def test_registration_is_throttled_per_address(identity: IdentityService) -> None:
    email = unique_email()
    limit = identity.settings.mail_requests_max_per_email
    for _ in range(limit):
        await register(identity, email=email)
    from mmgen.identity.domain.errors import LoginThrottledError

    with pytest.raises(LoginThrottledError):
        await register(identity, email=email)


async def test_a_rejected_password_is_refused_for_a_taken_address_too(
    identity: IdentityService,
) -> None:
    owner = await register(identity)
    with pytest.raises(PasswordRejectedError):
        await register(identity, email=owner["email"], password="password")


# --- email verification --------------------------------------------------------------------------


async def test_the_mailed_token_verifies_the_address_once(identity: IdentityService) -> None:
    user = await register(identity)
    assert not (await identity.accounts.load_active(user["user_id"])).email_verified
    token = token_in(mails_to(identity, user["email"])[0])
    await identity.credentials.verify_email(token)
    assert (await identity.accounts.load_active(user["user_id"])).email_verified
    with pytest.raises(OneTimeTokenInvalidError):
        await identity.credentials.verify_email(token)


@pytest.mark.parametrize("mangle", ["truncate", "other-user", "reset-kind", "garbage"])
async def test_forged_or_altered_tokens_verify_nothing(
    identity: IdentityService, mangle: str
) -> None:
    user = await register(identity)
    other = await register(identity)
    token = token_in(mails_to(identity, user["email"])[0])
    kind, user_id, version, expires, signature = token.split(".")
    forged = {
        "truncate": token[:-3],
        "other-user": ".".join([kind, other["user_id"], version, expires, signature]),
        "reset-kind": ".".join(["reset", user_id, version, expires, signature]),
        "garbage": "verify.x.1.2.abc",
    }[mangle]
    with pytest.raises(OneTimeTokenInvalidError):
        await identity.credentials.verify_email(forged)
    assert not (await identity.accounts.load_active(user["user_id"])).email_verified


async def test_a_token_for_an_address_since_changed_verifies_nothing(
    identity: IdentityService,
) -> None:
    user = await register(identity)
    old_token = token_in(mails_to(identity, user["email"])[0])
    from mmgen.identity.service_layer.accounts import Correction

    new_email = unique_email("moved")
    actor = Actor(id=user["user_id"], role="client")
    await identity.accounts.correct(user["user_id"], Correction({"email": new_email}), actor)
    with pytest.raises(OneTimeTokenInvalidError):
        await identity.credentials.verify_email(old_token)
    await identity.credentials.verify_email(token_in(mails_to(identity, new_email)[0]))
    assert (await identity.accounts.load_active(user["user_id"])).email_verified


# --- passwords -----------------------------------------------------------------------------------


async def test_a_password_change_needs_the_current_one_and_revokes_every_session(
    identity: IdentityService,
) -> None:
    user = await register(identity)
    refresh = await identity.refresh_tokens.issue(user["user_id"], "client")
    actor = Actor(id=user["user_id"], role="client")
    new = passphrase()
    with pytest.raises(ReauthenticationFailedError):
        await identity.credentials.change_password(
            user["user_id"], "not it at all", new, ADDRESS, actor
        )
    await identity.credentials.change_password(
        user["user_id"], user["password"], new, ADDRESS, actor
    )
    with pytest.raises(InvalidCredentialsError):
        await identity.credentials.sign_in(user["email"], user["password"], NONE, ADDRESS)
    signed_in, amr = await identity.credentials.sign_in(user["email"], new, NONE, ADDRESS)
    assert signed_in.id == user["user_id"] and amr == ["pwd"]
    from mmgen.identity.domain.errors import RefreshTokenInvalidError

    with pytest.raises(RefreshTokenInvalidError):
        await identity.refresh_tokens.rotate(refresh)
    assert any("password was changed" in m.subject for m in mails_to(identity, user["email"]))


async def test_a_reset_sets_a_new_password_once_and_proves_the_mailbox(
    identity: IdentityService,
) -> None:
    user = await register(identity)
    refresh = await identity.refresh_tokens.issue(user["user_id"], "client")
    await identity.credentials.request_password_reset(user["email"], ADDRESS)
    [reset] = [m for m in mails_to(identity, user["email"]) if "reset" in m.subject]
    token, new = token_in(reset), passphrase()
    with pytest.raises(PasswordRejectedError):  # a refused password does not spend the token
        await identity.credentials.confirm_password_reset(token, "password")
    await identity.credentials.confirm_password_reset(token, new)
    with pytest.raises(OneTimeTokenInvalidError):
        await identity.credentials.confirm_password_reset(token, passphrase())
    await identity.credentials.sign_in(user["email"], new, NONE, ADDRESS)
    account = await identity.accounts.load_active(user["user_id"])
    assert account.email_verified
    from mmgen.identity.domain.errors import RefreshTokenInvalidError

    with pytest.raises(RefreshTokenInvalidError):
        await identity.refresh_tokens.rotate(refresh)


async def test_access_tokens_issued_before_a_password_change_or_reset_stop_verifying(
    identity: IdentityService,
) -> None:
    from mmgen.platform.auth import SubjectRevokedError

    user = await register(identity)
    user_id = user["user_id"]
    other_session = await identity.tokens.issue_pair(user_id, "client")
    assert (await identity.verifier.verify(other_session.access_token)).subject_id == user_id
    actor = Actor(id=user_id, role="client")
    new = passphrase()
    await identity.credentials.change_password(user_id, user["password"], new, ADDRESS, actor)
    with pytest.raises(SubjectRevokedError) as refused:
        await identity.verifier.verify(other_session.access_token)
    assert refused.value.reason == "issued before the credentials changed"
    # Tokens issued after it verify, even within the second of the change.
    fresh = await identity.tokens.issue_pair(user_id, "client")
    assert (await identity.verifier.verify(fresh.access_token)).subject_id == user_id
    # The event other services read carries the instant; the read model holds it too.
    [changed] = await stored_events(identity, "identity.PasswordChanged")
    account = await identity.account_records.get(user_id)
    assert account is not None
    assert changed.data["tokens_not_before"] == account.tokens_not_before
    assert account.tokens_not_before <= time.time() + 1

    # A reset does the same.
    await identity.credentials.request_password_reset(user["email"], ADDRESS)
    [reset] = [m for m in mails_to(identity, user["email"]) if "reset" in m.subject]
    await identity.credentials.confirm_password_reset(token_in(reset), passphrase())
    with pytest.raises(SubjectRevokedError):  # issued after the change, within its second
        await identity.verifier.verify(fresh.access_token)
    after_reset = await identity.tokens.issue_pair(user_id, "client")
    assert (await identity.verifier.verify(after_reset.access_token)).subject_id == user_id


async def test_a_reset_for_an_unknown_address_mails_nothing_and_says_nothing(
    identity: IdentityService,
) -> None:
    before = len(outbox(identity).messages)
    await identity.credentials.request_password_reset(unique_email("nobody"), ADDRESS)
    await identity.credentials.request_password_reset("not an address", ADDRESS)
    assert len(outbox(identity).messages) == before


async def test_a_reset_token_asked_before_a_password_change_is_void(
    identity: IdentityService,
) -> None:
    user = await register(identity)
    await identity.credentials.request_password_reset(user["email"], ADDRESS)
    [reset] = [m for m in mails_to(identity, user["email"]) if "reset" in m.subject]
    actor = Actor(id=user["user_id"], role="client")
    await identity.credentials.change_password(
        user["user_id"], user["password"], passphrase(), ADDRESS, actor
    )
    with pytest.raises(OneTimeTokenInvalidError):
        await identity.credentials.confirm_password_reset(token_in(reset), passphrase())


# --- TOTP ----------------------------------------------------------------------------------------


async def test_an_unverified_address_cannot_enrol_totp(identity: IdentityService) -> None:
    user = await register(identity)
    with pytest.raises(EmailNotVerifiedError):
        await identity.credentials.enrol_totp(user["user_id"], user["password"], NONE, ADDRESS)


async def test_enrolment_needs_the_password_and_a_code_to_take_effect(
    identity: IdentityService,
) -> None:
    user = await verified(identity)
    with pytest.raises(ReauthenticationFailedError):
        await identity.credentials.enrol_totp(user["user_id"], "wrong password!!", NONE, ADDRESS)
    enrolment = await identity.credentials.enrol_totp(
        user["user_id"], user["password"], NONE, ADDRESS
    )
    assert len(enrolment.recovery_codes) == 10
    assert enrolment.otpauth_uri.startswith("otpauth://totp/")
    # Pending: sign-in still needs the password only.
    _, amr = await identity.credentials.sign_in(user["email"], user["password"], NONE, ADDRESS)
    assert amr == ["pwd"]
    with pytest.raises(TotpEnrolmentError):
        await identity.credentials.confirm_totp(user["user_id"], code_for(enrolment.secret, 5))
    await identity.credentials.confirm_totp(user["user_id"], code_for(enrolment.secret))
    assert (await identity.accounts.load_active(user["user_id"])).totp_enabled


async def test_tokens_got_without_the_second_factor_stop_verifying_once_it_is_on(
    identity: IdentityService,
) -> None:
    from mmgen.platform.auth import SubjectRevokedError

    user = await verified(identity)
    user_id = user["user_id"]
    before = await identity.tokens.issue_pair(user_id, "client")
    enrolment = await identity.credentials.enrol_totp(user_id, user["password"], NONE, ADDRESS)
    pending = await identity.tokens.issue_pair(user_id, "client")
    assert (await identity.verifier.verify(pending.access_token)).subject_id == user_id
    await identity.credentials.confirm_totp(user_id, code_for(enrolment.secret))
    for token in (before.access_token, pending.access_token):
        with pytest.raises(SubjectRevokedError) as refused:
            await identity.verifier.verify(token)
        assert refused.value.reason == "issued before the credentials changed"
    # A sign-in with a code, even within the second of the activation, verifies.
    _, amr = await identity.credentials.sign_in(
        user["email"], user["password"], SecondFactor(totp=code_for(enrolment.secret, 1)), ADDRESS
    )
    fresh = await identity.tokens.issue_pair(user_id, "client", amr)
    assert (await identity.verifier.verify(fresh.access_token)).amr == ("pwd", "otp")
    # The event other services read carries the instant the read model holds.
    [activated] = await stored_events(identity, "identity.TotpActivated")
    account = await identity.account_records.get(user_id)
    assert account is not None
    assert activated.data["tokens_not_before"] == account.tokens_not_before


async def test_sign_in_with_totp_needs_a_fresh_code_each_time(identity: IdentityService) -> None:
    user = await with_totp(identity)
    email, password = user["email"], user["password"]
    with pytest.raises(SecondFactorRequiredError):
        await identity.credentials.sign_in(email, password, NONE, ADDRESS)
    with pytest.raises(InvalidCredentialsError):
        await identity.credentials.sign_in(email, password, SecondFactor(totp="000000"), ADDRESS)
    # The confirmation used the current step's code: the next step's code signs in, once.
    code = code_for(user["secret"], 1)
    _, amr = await identity.credentials.sign_in(email, password, SecondFactor(totp=code), ADDRESS)
    assert amr == ["pwd", "otp"]
    with pytest.raises(InvalidCredentialsError):
        await identity.credentials.sign_in(email, password, SecondFactor(totp=code), ADDRESS)
    # A wrong password with a right code is the generic refusal (the code is not consumed).
    with pytest.raises(InvalidCredentialsError):
        await identity.credentials.sign_in(
            email, "wrong password!!", SecondFactor(totp=code_for(user["secret"], -1)), ADDRESS
        )


async def test_each_recovery_code_signs_in_once(identity: IdentityService) -> None:
    user = await with_totp(identity)
    email, password = user["email"], user["password"]
    first, second = user["recovery_codes"][:2]
    _, amr = await identity.credentials.sign_in(
        email, password, SecondFactor(recovery_code=first.upper()), ADDRESS
    )
    assert amr == ["pwd", "otp"]
    with pytest.raises(InvalidCredentialsError):
        await identity.credentials.sign_in(
            email, password, SecondFactor(recovery_code=first), ADDRESS
        )
    await identity.credentials.sign_in(email, password, SecondFactor(recovery_code=second), ADDRESS)
    account = await identity.accounts.load_active(user["user_id"])
    assert sum(1 for h in account.recovery_codes if h is not None) == 8


async def test_reauthentication_with_totp_needs_a_code(identity: IdentityService) -> None:
    user = await with_totp(identity)
    with pytest.raises(ReauthenticationFailedError):
        await identity.credentials.reauthenticate(user["user_id"], user["password"], NONE, ADDRESS)
    code = SecondFactor(totp=code_for(user["secret"], 1))
    await identity.credentials.reauthenticate(user["user_id"], user["password"], code, ADDRESS)


async def test_the_secret_is_sealed_in_the_store(identity: IdentityService) -> None:
    user = await with_totp(identity)
    [enrolled] = await stored_events(identity, "identity.TotpEnrolled")
    assert enrolled.pii is not None and enrolled.pii.owner == f"subject:{user['user_id']}"
    assert user["secret"] not in enrolled.model_dump_json()

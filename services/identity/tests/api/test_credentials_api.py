"""The credential life cycle over HTTP, on the real database, with mail through the session's
SMTP sink: verification, reset, change, TOTP enrolment and sign-in, re-authentication."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import (
    Running,
    TotpCodes,
    bearer,
    passphrase,
    token_in,
    unique_email,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def amr_of(access_token: str) -> list[str]:
    claims = jwt.decode(access_token, options={"verify_signature": False})
    return list(claims.get("amr", []))


async def test_registration_mails_a_token_that_verifies_the_address_once(svc: Running) -> None:
    user = await svc.user_with_token()
    token = await svc.mailed_token(user["email"], "verify your email")
    me = await svc.client.get("/users/me", headers=user["auth"])
    assert me.json()["email_verified"] is False
    verified = await svc.client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 204, verified.text
    me = await svc.client.get("/users/me", headers=user["auth"])
    assert me.json()["email_verified"] is True
    again = await svc.client.post("/auth/verify-email", json={"token": token})
    assert_problem(again, 400, "one-time-token-invalid")
    assert await svc.event_types(subject_id=user["user_id"], event_type="identity.EmailVerified")


@pytest.mark.parametrize("token", ["", "x" * 600, "verify.a.b.c.d", "not-a-token"])
async def test_bad_verification_tokens_are_refused(svc: Running, token: str) -> None:
    response = await svc.client.post("/auth/verify-email", json={"token": token})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_reset_answers_alike_and_mails_a_token_that_works_once(svc: Running) -> None:
    user = await svc.user_with_token()
    known = await svc.client.post("/auth/password-reset", json={"email": user["email"]})
    unknown = await svc.client.post("/auth/password-reset", json={"email": unique_email("none")})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    token = await svc.mailed_token(user["email"], "reset your password")
    new = passphrase()
    weak = await svc.client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": "password"}
    )
    assert_problem(weak, 422, "password-rejected")
    done = await svc.client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": new}
    )
    assert done.status_code == 204, done.text
    replay = await svc.client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": passphrase()}
    )
    assert_problem(replay, 400, "one-time-token-invalid")
    # Every session is over; the old password is refused, the new one signs in.
    refreshed = await svc.client.post(
        "/auth/refresh", json={"refresh_token": user["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid-refresh-token")
    old = await svc.client.post(
        "/auth/token", json={"email": user["email"], "password": user["password"]}
    )
    assert_problem(old, 401, "invalid-credentials")
    # The mailbox was proven by the reset, and the owner was told of the change.
    signed_in = await svc.login(user["email"], new)
    me = await svc.client.get("/users/me", headers=bearer(signed_in["access_token"]))
    assert me.json()["email_verified"] is True
    await svc.mails_to(user["email"], "your password was changed")


async def test_a_password_change_needs_the_current_one_and_ends_other_sessions(
    svc: Running,
) -> None:
    user = await svc.user_with_token()
    other_session = await svc.login(user["email"], user["password"])
    new = passphrase()
    wrong = await svc.client.post(
        "/users/me/password",
        headers=user["auth"],
        json={"current_password": "certainly not the password", "new_password": new},
    )
    assert_problem(wrong, 403, "reauthentication-failed")
    changed = await svc.client.post(
        "/users/me/password",
        headers=user["auth"],
        json={"current_password": user["password"], "new_password": new},
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    for spent in (user["refresh_token"], other_session["refresh_token"]):
        refused = await svc.client.post("/auth/refresh", json={"refresh_token": spent})
        assert_problem(refused, 401, "invalid-refresh-token")
    kept = await svc.client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert kept.status_code == 200, kept.text
    await svc.login(user["email"], new)


async def test_totp_enrolment_and_sign_in_with_codes_and_recovery_codes(svc: Running) -> None:
    user = await svc.user_with_token()
    auth = user["auth"]
    # An unverified address cannot get a second factor (a squatter would keep the owner out).
    early = await svc.client.post(
        "/users/me/mfa/totp", headers=auth, json={"current_password": user["password"]}
    )
    assert_problem(early, 409, "email-not-verified")
    token = await svc.mailed_token(user["email"], "verify your email")
    assert (await svc.client.post("/auth/verify-email", json={"token": token})).status_code == 204
    wrong = await svc.client.post(
        "/users/me/mfa/totp", headers=auth, json={"current_password": "not the password, no"}
    )
    assert_problem(wrong, 403, "reauthentication-failed")
    enrolled = await svc.client.post(
        "/users/me/mfa/totp", headers=auth, json={"current_password": user["password"]}
    )
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/") and len(body["recovery_codes"]) == 10
    codes = TotpCodes(body["secret"])
    bad = await svc.client.post("/users/me/mfa/totp/confirm", headers=auth, json={"code": "000000"})
    assert bad.status_code in (409, 422) and bad.status_code != 204
    confirmed = await svc.client.post(
        "/users/me/mfa/totp/confirm", headers=auth, json={"code": codes.next()}
    )
    assert confirmed.status_code == 204, confirmed.text
    # The password-only session ends with it: no session without the code outlives the factor.
    ended = await svc.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert_problem(ended, 401, "invalid-refresh-token")
    assert (await svc.client.get("/users/me", headers=auth)).status_code == 401
    # The secret is nowhere in clear in the database.
    for doc in await svc.stored_events(subject_id=user["user_id"]):
        assert body["secret"] not in str(doc)

    credentials = {"email": user["email"], "password": user["password"]}
    missing = await svc.client.post("/auth/token", json=credentials)
    problem = assert_problem(missing, 401, "mfa-required")
    assert problem["code"] == "mfa_required"
    invalid = await svc.client.post("/auth/token", json={**credentials, "totp": "000000"})
    problem = assert_problem(invalid, 401, "invalid-credentials")
    assert problem.get("code") != "mfa_required"
    code = codes.next()
    signed = await svc.client.post("/auth/token", json={**credentials, "totp": code})
    assert signed.status_code == 200, signed.text
    assert amr_of(signed.json()["access_token"]) == ["pwd", "otp"]
    replayed = await svc.client.post("/auth/token", json={**credentials, "totp": code})
    assert_problem(replayed, 401, "invalid-credentials")
    # A refresh keeps the factors of the sign-in.
    refreshed = await svc.client.post(
        "/auth/refresh", json={"refresh_token": signed.json()["refresh_token"]}
    )
    assert amr_of(refreshed.json()["access_token"]) == ["pwd", "otp"]
    recovery = body["recovery_codes"][0]
    by_recovery = await svc.client.post(
        "/auth/token", json={**credentials, "recovery_code": recovery}
    )
    assert by_recovery.status_code == 200, by_recovery.text
    spent = await svc.client.post("/auth/token", json={**credentials, "recovery_code": recovery})
    assert_problem(spent, 401, "invalid-credentials")

    # Closing the account now needs the password and a code.
    mfa_auth = bearer(signed.json()["access_token"])
    no_code = await svc.client.request(
        "DELETE", "/users/me", headers=mfa_auth, json={"current_password": user["password"]}
    )
    assert_problem(no_code, 403, "reauthentication-failed")
    closed = await svc.client.request(
        "DELETE",
        "/users/me",
        headers=mfa_auth,
        json={"current_password": user["password"], "totp": codes.next()},
    )
    assert closed.status_code == 204, closed.text


async def test_two_parallel_uses_of_one_code_sign_in_once(svc: Running) -> None:
    staff = await svc.staff("compliance")
    code = staff["totp"].next()
    body = {"email": staff["email"], "password": staff["password"], "totp": code}
    answers = await asyncio.gather(*(svc.client.post("/auth/token", json=body) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]


async def test_privileged_roles_without_a_second_factor_reach_only_enrolment(
    svc: Running,
) -> None:
    staff = await svc.staff("staff", mfa=False)
    client = await svc.user_with_token()
    assert amr_of(staff["access_token"]) == ["pwd"]
    read = await svc.client.get(
        f"/users/{client['user_id']}", headers={**staff["auth"], "X-Purpose": "support"}
    )
    problem = assert_problem(read, 403, "mfa-required")
    assert problem["code"] == "mfa_required"
    denials = await svc.stored_events(
        event_type="identity.AccessDenied", **{"actor.id": staff["user_id"]}
    )
    assert [d["data"]["code"] for d in denials] == ["mfa-required"]
    enrolled = await svc.client.post(
        "/users/me/mfa/totp", headers=staff["auth"], json={"current_password": staff["password"]}
    )
    assert enrolled.status_code == 201, enrolled.text
    codes = TotpCodes(enrolled.json()["secret"])
    confirmed = await svc.client.post(
        "/users/me/mfa/totp/confirm", headers=staff["auth"], json={"code": codes.next()}
    )
    assert confirmed.status_code == 204
    tokens = await svc.login(staff["email"], staff["password"], totp=codes.next())
    read = await svc.client.get(
        f"/users/{client['user_id']}",
        headers={**bearer(tokens["access_token"]), "X-Purpose": "support"},
    )
    assert read.status_code == 200, read.text


async def test_mail_tokens_survive_a_sender_that_was_down(svc: Running) -> None:
    """A message is in the outbox before the answer; stopped, the sender sends it on restart."""
    await svc.identity.mail_sender.stop()
    try:
        user = await svc.register()
        assert await svc.identity.mail_outbox.pending() >= 1
    finally:
        await svc.identity.mail_sender.start()
    token = token_in((await svc.mails_to(user["email"], "verify your email"))[0].text())
    assert (await svc.client.post("/auth/verify-email", json={"token": token})).status_code == 204

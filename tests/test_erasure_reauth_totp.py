"""Retention's re-authentication for an erasure, against the running identity, for an account
with TOTP: the password alone is answered "a one-time code is needed", a wrong code signs
nobody in, a current code or a recovery code signs the subject in with "otp" in `amr`.

The re-authentication path runs only for a sign-in older than retention's bound (at least
30 s), so rather than wait that long the test drives retention's own adapter
(`IdentitySignIn`, the one its app wires) against the identity that runs here: what is under
test is that identity's real answers are read right. The route's handling of each outcome is
covered by retention's API tests.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from mmgen.localstack.mailsink import read_messages
from mmgen.platform.http import service_client
from mmgen.platform.totp import Authenticator
from mmgen.retention.adapters.reauth import IdentitySignIn
from mmgen.retention.domain.credentials import SignInCredentials
from mmgen.retention.domain.errors import SecondFactorNeededError
from tests import people

DEADLINE_S = 30.0


async def _verification_token(mail_dir: Path, to: str) -> str:
    """The token of the verification mail identity sent to `to` (the local SMTP sink)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        mails = [m for m in read_messages(mail_dir, to=to) if "verify your email" in m.subject]
        if mails:
            found = re.search(r"^token: (\S+)", mails[-1].text(), re.MULTILINE)
            assert found is not None, mails[-1].text()
            return found.group(1)
        assert time.monotonic() < deadline, f"no verification mail to {to}"
        await asyncio.sleep(0.2)


async def test_an_account_with_totp_reauthenticates_only_with_its_code(system: Any) -> None:
    identity = system.url("identity")
    email, password = f"client-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
    async with service_client(15.0) as http:
        user_id, token = await people.register(
            http,
            identity,
            {"email": email, "password": password, "name": "Ada Client", "role": "client"},
        )
        # TOTP is enrolled on a verified address only.
        verify = await _verification_token(system.mail_dir, email)
        verified = await http.post(f"{identity}/auth/verify-email", json={"token": verify})
        assert verified.status_code == 204, verified.text
        enrolled = await http.post(
            f"{identity}/users/me/mfa/totp",
            headers=people.bearer(token),
            json={"current_password": password},
        )
        assert enrolled.status_code == 201, enrolled.text
        authenticator = Authenticator(enrolled.json()["secret"])
        recovery_code = enrolled.json()["recovery_codes"][0]
        confirmed = await http.post(
            f"{identity}/users/me/mfa/totp/confirm",
            headers=people.bearer(token),
            json={"code": authenticator.code()},
        )
        assert confirmed.status_code == 204, confirmed.text

        check = IdentitySignIn(identity, http)
        with pytest.raises(SecondFactorNeededError):
            await check.access_token(SignInCredentials(email, password))
        wrong_code = str((int(authenticator.code()) + 1) % 1_000_000).zfill(6)
        assert await check.access_token(SignInCredentials(email, password, totp=wrong_code)) is None
        assert await check.access_token(SignInCredentials(email, "not-it", totp="123456")) is None

        for credentials in (
            SignInCredentials(email, password, totp=authenticator.code()),
            SignInCredentials(email, password, recovery_code=recovery_code),
        ):
            proof = await check.access_token(credentials)
            assert proof is not None
            claims = jwt.decode(proof, options={"verify_signature": False})
            assert claims["sub"] == user_id
            assert claims["amr"] == ["pwd", "otp"]
        # A recovery code signs in once.
        spent = SignInCredentials(email, password, recovery_code=recovery_code)
        assert await check.access_token(spent) is None

"""`mmgen.cli.signin` against a small identity that keeps its TOTP contract: a privileged
account enrols a second factor the first time it signs in and uses a code from then on; a
client signs in with its password alone; a refusal says which step failed."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from mmgen.cli import signin
from mmgen.platform import totp

IDENTITY = "http://identity.test"


def _token(role: str, amr: list[str]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'EdDSA'})}.{part({'role': role, 'amr': amr})}.c2ln"


class Identity:
    """Accounts by email: (password, role); TOTP secrets of those enrolled and confirmed."""

    def __init__(self, **accounts: tuple[str, str]) -> None:
        self.accounts = {f"{name}@example.test": value for name, value in accounts.items()}
        self.pending: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        body = json.loads(request.content or b"{}")
        if request.url.path == "/auth/token":
            email = body["email"].lower()  # identity compares addresses case-blind
            password, role = self.accounts.get(email, ("", ""))
            if body["password"] != password:
                return httpx.Response(401, json={"title": "invalid credentials"})
            amr = ["pwd"]
            if email in self.secrets:
                if body.get("totp") is None:
                    return httpx.Response(401, json={"code": "mfa_required"})
                if not _within_a_step(self.secrets[email], body["totp"]):
                    return httpx.Response(401, json={"title": "invalid credentials"})
                amr.append("otp")
            return httpx.Response(200, json={"access_token": _token(role, amr)})
        assert request.headers["Authorization"].startswith("Bearer ")
        [email] = [e for e in self.accounts if e not in self.secrets]  # one account a test
        if request.url.path == "/users/me/mfa/totp":
            self.pending[email] = "JBSWY3DPEHPK3PXP"
            return httpx.Response(201, json={"secret": self.pending[email]})
        if request.url.path == "/users/me/mfa/totp/confirm":
            if not _within_a_step(self.pending[email], body["code"]):
                return httpx.Response(409, json={"title": "wrong code"})
            self.secrets[email] = self.pending.pop(email)
            return httpx.Response(204)
        return httpx.Response(404)


def _within_a_step(secret: str, code: str) -> bool:
    key, now = totp.secret_from_text(secret), totp.step_at(time.time())
    return code in {totp.hotp(key, step) for step in (now - 1, now, now + 1)}


def _claims(token: str) -> Any:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_privileged_account_enrols_once_then_signs_in_with_a_code() -> None:
    identity = Identity(ada=("pw-ada", "compliance"))
    known: signin.Authenticators = {}
    with httpx.Client(transport=httpx.MockTransport(identity)) as http:
        first = signin.sign_in_sync(http, IDENTITY, "ada@example.test", "pw-ada", known)
        assert _claims(first)["amr"] == ["pwd", "otp"]
        assert identity.calls == [
            "/auth/token", "/users/me/mfa/totp", "/users/me/mfa/totp/confirm", "/auth/token"
        ]  # fmt: skip
        assert (IDENTITY, "ada@example.test") in known
        identity.calls.clear()
        again = signin.sign_in_sync(http, IDENTITY, "Ada@example.test", "pw-ada", known)
        assert _claims(again)["amr"] == ["pwd", "otp"]
        assert identity.calls == ["/auth/token"]


async def test_a_client_signs_in_with_its_password_alone() -> None:
    identity = Identity(bo=("pw-bo", "client"))
    known: signin.Authenticators = {}
    async with httpx.AsyncClient(transport=httpx.MockTransport(identity)) as http:
        token = await signin.sign_in(http, IDENTITY, "bo@example.test", "pw-bo", known)
    assert _claims(token) == {"role": "client", "amr": ["pwd"]}
    assert identity.calls == ["/auth/token"] and known == {}


def test_a_refusal_names_the_step() -> None:
    identity = Identity(cy=("pw-cy", "staff"))
    with (
        httpx.Client(transport=httpx.MockTransport(identity)) as http,
        pytest.raises(signin.SignInError, match="signing in: 401"),
    ):
        signin.sign_in_sync(http, IDENTITY, "cy@example.test", "wrong", {})

"""Signing people in at a running identity, as the system tests need it.

- `register`: `POST /auth/register` answers 202 without an id (it must not tell whether the
  address was taken); the id comes from `GET /users/me` after signing in.
- `sign_in`: staff, compliance and admin reach personal data only with a token signed in with
  a one-time code (`amr` with "otp"). The first time such an account signs in, it enrols TOTP
  with its password-only token (the one thing that token may do) and signs in again with a
  code; the secret is kept here for its later sign-ins.

Async (`httpx.AsyncClient`) and sync (`httpx.Client`) flavours share the steps.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from mmgen.platform.totp import Authenticator

PRIVILEGED = frozenset({"staff", "compliance", "admin"})
#: (identity URL, email) → the account's authenticator, once enrolled here.
AUTHENTICATORS: dict[tuple[str, str], Authenticator] = {}


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _needs_enrolment(token: str) -> bool:
    claims = _claims(token)
    return claims.get("role") in PRIVILEGED and "otp" not in claims.get("amr", [])


def _token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _body(identity: str, email: str, password: str) -> dict[str, str]:
    body = {"email": email, "password": password}
    known = AUTHENTICATORS.get((identity, email.lower()))
    if known is not None:
        body["totp"] = known.code()
    return body


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def sign_in(http: httpx.AsyncClient, identity: str, email: str, password: str) -> str:
    """An access token; for a privileged role, one with "otp" in `amr` (enrolling if needed)."""
    token = _token(await http.post(f"{identity}/auth/token", json=_body(identity, email, password)))
    if not _needs_enrolment(token):
        return token
    enrolled = await http.post(
        f"{identity}/users/me/mfa/totp", headers=bearer(token), json={"current_password": password}
    )
    assert enrolled.status_code == 201, enrolled.text
    authenticator = Authenticator(enrolled.json()["secret"])
    confirmed = await http.post(
        f"{identity}/users/me/mfa/totp/confirm",
        headers=bearer(token),
        json={"code": authenticator.code()},
    )
    assert confirmed.status_code == 204, confirmed.text
    AUTHENTICATORS[(identity, email.lower())] = authenticator
    return _token(await http.post(f"{identity}/auth/token", json=_body(identity, email, password)))


async def register(http: httpx.AsyncClient, identity: str, body: dict[str, Any]) -> tuple[str, str]:
    """Register (202), sign in; returns (user id, access token)."""
    response = await http.post(f"{identity}/auth/register", json=body)
    assert response.status_code == 202, response.text
    token = await sign_in(http, identity, body["email"], body["password"])
    me = await http.get(f"{identity}/users/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    return str(me.json()["user_id"]), token


def sign_in_sync(identity: str, email: str, password: str, timeout: float = 10) -> str:
    with httpx.Client(timeout=timeout) as http:
        token = _token(http.post(f"{identity}/auth/token", json=_body(identity, email, password)))
        if not _needs_enrolment(token):
            return token
        enrolled = http.post(
            f"{identity}/users/me/mfa/totp",
            headers=bearer(token),
            json={"current_password": password},
        )
        assert enrolled.status_code == 201, enrolled.text
        authenticator = Authenticator(enrolled.json()["secret"])
        confirmed = http.post(
            f"{identity}/users/me/mfa/totp/confirm",
            headers=bearer(token),
            json={"code": authenticator.code()},
        )
        assert confirmed.status_code == 204, confirmed.text
        AUTHENTICATORS[(identity, email.lower())] = authenticator
        return _token(http.post(f"{identity}/auth/token", json=_body(identity, email, password)))


def register_sync(identity: str, body: dict[str, Any], timeout: float = 10) -> tuple[str, str]:
    response = httpx.post(f"{identity}/auth/register", json=body, timeout=timeout)
    assert response.status_code == 202, response.text
    token = sign_in_sync(identity, body["email"], body["password"])
    me = httpx.get(f"{identity}/users/me", headers=bearer(token), timeout=timeout)
    assert me.status_code == 200, me.text
    return str(me.json()["user_id"]), token

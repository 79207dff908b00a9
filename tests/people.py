"""Signing people in at a running identity, as the system tests need it.

- `register`: `POST /auth/register` answers 202 without an id (it must not tell whether the
  address was taken); the id comes from `GET /users/me` after signing in.
- `sign_in`: `mmgen.cli.signin`'s, with one set of authenticators for the session: staff,
  compliance and admin enrol TOTP the first time they sign in, and sign in with a code from
  then on (a test takes a code for a re-authentication from `AUTHENTICATORS`).
"""

from __future__ import annotations

from typing import Any

import httpx

from mmgen.cli import signin

#: (identity URL, email) → the account's authenticator, once enrolled here.
AUTHENTICATORS: signin.Authenticators = {}


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def sign_in(http: httpx.AsyncClient, identity: str, email: str, password: str) -> str:
    """An access token; for a privileged role, one with "otp" in `amr` (enrolling if needed)."""
    return await signin.sign_in(http, identity, email, password, AUTHENTICATORS)


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
        return signin.sign_in_sync(http, identity, email, password, AUTHENTICATORS)


def register_sync(identity: str, body: dict[str, Any], timeout: float = 10) -> tuple[str, str]:
    response = httpx.post(f"{identity}/auth/register", json=body, timeout=timeout)
    assert response.status_code == 202, response.text
    token = sign_in_sync(identity, body["email"], body["password"])
    me = httpx.get(f"{identity}/users/me", headers=bearer(token), timeout=timeout)
    assert me.status_code == 200, me.text
    return str(me.json()["user_id"]), token

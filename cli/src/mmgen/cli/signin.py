"""Signing in at identity as a person does, with the second factor a privileged role needs.

Staff, compliance and admin reach personal data only with a token signed in with a one-time
code (`amr` with "otp"). The first time such an account signs in here, its password-only token
(which may do nothing but this) enrols TOTP, a code confirms it, and the account signs in again
with a code; its `Authenticator` is kept in the caller's `Authenticators` for later sign-ins
and re-authentications. What stacks started for tests, benches and the browser tests share.

The steps are written once (`_steps`, the requests to send in order) and sent by a sync or an
async client.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Generator
from typing import Any

import httpx

from mmgen.platform.totp import Authenticator

PRIVILEGED = frozenset({"staff", "compliance", "admin"})
#: (identity's URL, the account's email, lower-case) → its authenticator, once enrolled.
Authenticators = dict[tuple[str, str], Authenticator]
#: One request: method, URL, headers, JSON body.
Call = tuple[str, str, dict[str, str], dict[str, Any]]


class SignInError(Exception):
    """Identity refused a step of the sign-in (the step, its status and its answer)."""


def sign_in_sync(
    http: httpx.Client, identity: str, email: str, password: str, known: Authenticators
) -> str:
    """An access token for the account; for a privileged role, one with "otp" in `amr`."""
    steps = _steps(identity, email, password, known)
    call = next(steps)
    while True:
        method, url, headers, body = call
        try:
            call = steps.send(http.request(method, url, headers=headers, json=body))
        except StopIteration as done:
            return str(done.value)


async def sign_in(
    http: httpx.AsyncClient, identity: str, email: str, password: str, known: Authenticators
) -> str:
    """`sign_in_sync` with an async client."""
    steps = _steps(identity, email, password, known)
    call = next(steps)
    while True:
        method, url, headers, body = call
        try:
            call = steps.send(await http.request(method, url, headers=headers, json=body))
        except StopIteration as done:
            return str(done.value)


def _steps(
    identity: str, email: str, password: str, known: Authenticators
) -> Generator[Call, httpx.Response, str]:
    key = (identity, email.lower())
    token = _token((yield _token_call(identity, email, password, known.get(key))))
    claims = _claims(token)
    if claims.get("role") not in PRIVILEGED or "otp" in claims.get("amr", []):
        return token
    auth = {"Authorization": f"Bearer {token}"}
    enrolled = _expect(
        (yield ("POST", f"{identity}/users/me/mfa/totp", auth, {"current_password": password})),
        201,
        "enrolling TOTP",
    )
    authenticator = Authenticator(enrolled.json()["secret"])
    code = {"code": authenticator.code()}
    confirm = f"{identity}/users/me/mfa/totp/confirm"
    _expect((yield ("POST", confirm, auth, code)), 204, "confirming TOTP")
    known[key] = authenticator
    return _token((yield _token_call(identity, email, password, authenticator)))


def _token_call(identity: str, email: str, password: str, app: Authenticator | None) -> Call:
    body = {"email": email, "password": password}
    if app is not None:
        body["totp"] = app.code()
    return ("POST", f"{identity}/auth/token", {}, body)


def _claims(token: str) -> dict[str, Any]:
    """The token's claims, unverified: read to choose the next step, trusted for nothing."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def _token(response: httpx.Response) -> str:
    return str(_expect(response, 200, "signing in").json()["access_token"])


def _expect(response: httpx.Response, status: int, step: str) -> httpx.Response:
    if response.status_code != status:
        raise SignInError(f"{step}: {response.status_code} {response.text[:500]}")
    return response

"""Sign-in at identity, and what the console itself demands of the token it gets back.

The officer's password and one-time code go to identity's `POST /auth/token`; identity
checks them (an account with TOTP enrolled gets 401 `mfa_required` without a code). The
console then accepts only a token that verifies under identity's keys, whose role is
`compliance` and whose `amr` names `otp`: a client's account, or a compliance account signed
in without a second factor, gets no session here whatever identity accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mmgen.platform.auth.errors import AuthError
from mmgen.platform.auth.principal import Principal
from mmgen.platform.auth.verifier import TokenVerifier

ALLOWED_ROLES = ("compliance",)
#: The services the officer's token is for: the console itself, and the audit log (kept by
#: consent) and retention, to which the console forwards it. A token for nothing else.
AUDIENCES = ("console", "consent", "retention")
SECOND_FACTORS = ("otp",)


class SignInRefusedError(Exception):
    """Identity refused the credentials, or the console refuses the account."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    principal: Principal
    expires_at: float
    refresh_token: str | None = None


def check_principal(
    principal: Principal,
    *,
    roles: Sequence[str] = ALLOWED_ROLES,
    factors: Sequence[str] = SECOND_FACTORS,
) -> None:
    """Refuse a token whose role is not allowed here or that was issued without MFA."""
    if str(principal.role) not in roles:
        raise SignInRefusedError(
            403, "role_not_allowed", "the console is for compliance staff only"
        )
    amr = principal.claims.get("amr")
    methods = {m for m in amr if isinstance(m, str)} if isinstance(amr, list) else set()
    if not methods.intersection(factors):
        raise SignInRefusedError(
            403,
            "mfa_required",
            "sign in with your one-time code (TOTP): the console needs a second factor",
        )


async def sign_in(
    client: httpx.AsyncClient,
    identity_url: str,
    verifier: TokenVerifier,
    *,
    email: str,
    password: str,
    totp: str | None,
) -> SignedIn:
    body: dict[str, Any] = {"email": email, "password": password, "audience": list(AUDIENCES)}
    if totp:
        body["totp"] = totp
    try:
        response = await client.post(f"{identity_url}/auth/token", json=body)
    except httpx.HTTPError as exc:
        raise SignInRefusedError(503, "identity_unreachable", "identity did not answer") from exc
    if response.status_code != 200:
        raise _identity_refusal(response)
    return await _accept(response, verifier)


async def refresh(
    client: httpx.AsyncClient, identity_url: str, verifier: TokenVerifier, refresh_token: str
) -> SignedIn:
    """A new token pair for a session about to expire, held to the same demands (a refreshed
    token that no longer names the second factor ends the session)."""
    try:
        response = await client.post(
            f"{identity_url}/auth/refresh", json={"refresh_token": refresh_token}
        )
    except httpx.HTTPError as exc:
        raise SignInRefusedError(503, "identity_unreachable", "identity did not answer") from exc
    if response.status_code != 200:
        raise SignInRefusedError(401, "session_expired", "sign in again")
    return await _accept(response, verifier)


async def _accept(response: httpx.Response, verifier: TokenVerifier) -> SignedIn:
    answer = response.json()
    token = answer.get("access_token")
    if not isinstance(token, str):
        raise SignInRefusedError(502, "identity_answer_invalid", "identity gave no token")
    try:
        principal = await verifier.verify(token)
    except AuthError as exc:
        raise SignInRefusedError(502, "token_invalid", "identity's token did not verify") from exc
    check_principal(principal)
    exp = principal.claims.get("exp")
    if not isinstance(exp, int):
        raise SignInRefusedError(502, "token_invalid", "identity's token has no expiry")
    renewal = answer.get("refresh_token")
    return SignedIn(token, principal, float(exp), renewal if isinstance(renewal, str) else None)


def _identity_refusal(response: httpx.Response) -> SignInRefusedError:
    """Identity's problem, reduced to what the sign-in form shows (never its internals)."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    code = problem.get("code") if isinstance(problem, dict) else None
    if code == "mfa_required":
        return SignInRefusedError(401, "mfa_required", "enter the one-time code of your app")
    if code == "invalid_target":  # the account's role may not hold a console token
        return SignInRefusedError(
            403, "role_not_allowed", "the console is for compliance staff only"
        )
    if response.status_code == 429:
        return SignInRefusedError(429, "throttled", "too many attempts: wait and try again")
    if response.status_code in (400, 401, 403, 422):
        detail = "the email, password or one-time code is not right"
        return SignInRefusedError(401, "invalid_credentials", detail)
    return SignInRefusedError(502, "identity_error", "identity could not sign you in")

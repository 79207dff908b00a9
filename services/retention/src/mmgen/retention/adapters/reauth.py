"""Re-authentication through identity: "the password again" for an erasure request.

Retention holds no passwords. A subject whose sign-in is older than the bound sends their
email and password with the request — and, when their account has TOTP, a current code or a
recovery code; retention signs them in at identity (`POST /auth/token`, with identity's own
throttling of failed attempts and its one-use rule for codes) and takes the access token
identity returns as the proof — the caller then checks that it verifies and names the same
subject. Identity decides whether a second factor is needed: it answers 401 `mfa_required`
for an account with TOTP signed in without one, which becomes `SecondFactorNeededError`.
Credentials pass through memory only: never stored, logged or put in an event.
"""

from __future__ import annotations

import httpx

from mmgen.retention.domain.credentials import SignInCredentials
from mmgen.retention.domain.errors import SecondFactorNeededError, ServiceUnreachableError

#: Identity's answers that mean "these credentials do not sign in" (not an outage).
REFUSED = frozenset({400, 401, 403, 404, 422, 429})
#: The member of identity's 401 that says "right password, the one-time code is missing".
MFA_REQUIRED = "mfa_required"


class IdentitySignIn:
    """`PasswordCheck` against identity's token endpoint."""

    def __init__(self, identity_url: str, client: httpx.AsyncClient) -> None:
        self.url = identity_url.rstrip("/") + "/auth/token"
        self.client = client

    async def access_token(self, credentials: SignInCredentials) -> str | None:
        """Identity's access token for these credentials, or None when it refuses them."""
        body = {"email": credentials.email, "password": credentials.password}
        if credentials.totp:
            body["totp"] = credentials.totp
        if credentials.recovery_code:
            body["recovery_code"] = credentials.recovery_code
        try:
            response = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise ServiceUnreachableError("identity", type(exc).__name__) from exc
        if response.status_code == 401 and _code(response) == MFA_REQUIRED:
            raise SecondFactorNeededError("the account signs in with a one-time code")
        if response.status_code in REFUSED:
            return None
        if response.status_code != 200:
            raise ServiceUnreachableError("identity", f"HTTP {response.status_code}")
        try:
            return str(response.json()["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceUnreachableError("identity", "token answer has the wrong shape") from exc


def _code(response: httpx.Response) -> str | None:
    """The `code` member of a problem answer, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None

"""Re-authentication through identity: "the password again" for an erasure request.

Retention holds no passwords. A subject whose sign-in is older than the bound sends their
email and password with the request; retention signs them in at identity (`POST /auth/token`,
with identity's own throttling of failed attempts) and takes the access token identity
returns as the proof — the caller then checks that it verifies and names the same subject.
The password passes through memory only: never stored, logged or put in an event.
"""

from __future__ import annotations

import httpx

from mmgen.retention.domain.errors import ServiceUnreachableError

#: Identity's answers that mean "these credentials do not sign in" (not an outage).
REFUSED = frozenset({400, 401, 403, 404, 422, 429})


class IdentitySignIn:
    """`PasswordCheck` against identity's token endpoint."""

    def __init__(self, identity_url: str, client: httpx.AsyncClient) -> None:
        self.url = identity_url.rstrip("/") + "/auth/token"
        self.client = client

    async def access_token(self, email: str, password: str) -> str | None:
        """Identity's access token for these credentials, or None when it refuses them."""
        try:
            response = await self.client.post(self.url, json={"email": email, "password": password})
        except httpx.HTTPError as exc:
            raise ServiceUnreachableError("identity", type(exc).__name__) from exc
        if response.status_code in REFUSED:
            return None
        if response.status_code != 200:
            raise ServiceUnreachableError("identity", f"HTTP {response.status_code}")
        try:
            return str(response.json()["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceUnreachableError("identity", "token answer has the wrong shape") from exc

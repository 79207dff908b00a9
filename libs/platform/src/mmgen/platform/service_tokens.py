"""Service tokens for `/internal/` calls: fetched from identity, cached until shortly before expiry.

A service (retention calling every service's `/internal/subjects/...`, for instance) holds a
client secret that identity derives for its name. It exchanges it at identity's
`POST /auth/service-token` for a short `role: service` JWT:

    tokens = ServiceTokenProvider(
        identity_url, "retention", settings.identity_client_secret, audiences=["projects"]
    )
    response = await http.get(url, headers=await tokens.headers())

The token is asked for the services it will be sent to (`audiences`; each service accepts only
tokens naming it), by default every service a service token may reach.

Under `mmgen up`, identity writes each client's secret to
`<state>/secrets/identity-service-clients.json` (mode 0600): `development_client_secret`
reads it, so a service's settings need no secret in development. In production the secret
comes from the service's own settings (`SecretStr`, refused when empty).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from mmgen.platform.errors import ConfigurationError, ServiceUnavailableError
from mmgen.platform.http import service_client

CLIENTS_FILE = "identity-service-clients.json"


def development_client_secret(state_dir: Path, service: str) -> tuple[str, str]:
    """`(identity_url, secret)` of `service`, from the file identity wrote under `mmgen up`."""
    path = Path(state_dir) / "secrets" / CLIENTS_FILE
    try:
        stored: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{path} does not exist: is identity running (mmgen up)?") from exc
    clients = stored.get("clients", {})
    if service not in clients:
        raise ConfigurationError(f"identity has no service client named {service!r}")
    return str(stored["identity_url"]), str(clients[service])


class ServiceTokenProvider:
    """Fetches and caches this service's token; refreshes it `margin_s` before it expires."""

    def __init__(
        self,
        identity_url: str,
        service: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        margin_s: float = 30.0,
        timeout_s: float = 5.0,
        audiences: Sequence[str] | None = None,
    ) -> None:
        self.url = identity_url.rstrip("/") + "/auth/service-token"
        self.service = service
        self.audiences = None if audiences is None else list(audiences)
        self._secret = secret
        self._client = client
        self._owns_client = client is None
        self._margin = margin_s
        self._timeout = timeout_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A valid service token (one request to identity at most per token lifetime)."""
        if self._token is not None and time.monotonic() < self._expires_at - self._margin:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at - self._margin:
                return self._token
            if self._client is None:
                self._client = service_client(self._timeout)
            body: dict[str, Any] = {"service": self.service, "secret": self._secret}
            if self.audiences is not None:
                body["audience"] = self.audiences
            try:
                response = await self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                raise ServiceUnavailableError(
                    "identity is not reachable for a service token"
                ) from exc
            if response.status_code != 200:
                raise ConfigurationError(
                    f"identity refused the service credentials of {self.service!r} "
                    f"({response.status_code})"
                )
            issued = response.json()
            self._token = str(issued["access_token"])
            self._expires_at = time.monotonic() + float(issued["expires_in"])
            return self._token

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    def invalidate(self) -> None:
        """Forget the token (e.g. after a 401: identity rotated keys or restarted)."""
        self._token = None

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

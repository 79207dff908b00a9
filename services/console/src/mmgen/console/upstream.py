"""Calls to the audit log and retention, as the signed-in officer.

Every call carries the officer's own token and `X-Purpose: legal_compliance`, so each read
is audited by the service that answers it as the officer's read, under that purpose. The
console forwards only the routes and query parameters it names (no open proxy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

PURPOSE = "legal_compliance"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class UpstreamUnavailableError(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(f"{service} did not answer")
        self.service = service


class Upstream:
    """One service's base URL and the shared HTTP client."""

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client = client

    def _headers(self, token: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-Purpose": PURPOSE, **(extra or {})}

    async def call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Answer:
        try:
            response = await self.client.request(
                method,
                self.base_url + path,
                params=dict(params or {}),
                json=json,
                headers=self._headers(token),
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(self.name) from exc
        return Answer(
            response.status_code,
            response.headers.get("content-type", "application/octet-stream"),
            response.content,
        )

    async def stream(
        self, path: str, token: str, *, last_event_id: str | None, params: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """The upstream's server-sent events, as they come (closed when the reader goes)."""
        headers = self._headers(token, {"Accept": "text/event-stream"})
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(10.0, read=None)
        try:
            async with self.client.stream(
                "GET", self.base_url + path, params=dict(params), headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    yield b"event: error\ndata: upstream refused the stream\n\n"
                    return
                async for chunk in response.aiter_raw():
                    yield chunk
        except httpx.HTTPError:
            yield b"event: error\ndata: the audit log stream broke off\n\n"

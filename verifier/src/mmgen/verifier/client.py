"""The few `/audit` calls verification makes, over HTTP with a compliance bearer token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from mmgen.verifier.checks import DEFAULT_PURPOSE
from mmgen.verifier.keys import CheckFailedError

PAGE = 500


def open_client(url: str | None, token: str | None) -> httpx.AsyncClient:
    if not url or not token:
        raise CheckFailedError(
            "--url and --token are required (or MMGEN_AUDIT_URL / MMGEN_AUDIT_TOKEN)"
        )
    return httpx.AsyncClient(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


class AuditApi:
    """`/audit` reads with the declared purpose (an `httpx.AsyncClient` holding the token)."""

    def __init__(self, client: httpx.AsyncClient, purpose: str = DEFAULT_PURPOSE) -> None:
        self.client = client
        self.headers = {"X-Purpose": purpose}

    async def get(self, path: str, **params: Any) -> Any:
        try:
            response = await self.client.get(path, params=params or None, headers=self.headers)
        except httpx.HTTPError as exc:
            raise CheckFailedError(f"GET {path}: {exc}") from exc
        if response.status_code != 200:
            raise CheckFailedError(f"GET {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    async def pages(self, upto: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Entries 0..upto-1 in seq order, one page (list) at a time."""
        cursor: str | None = None
        got = 0
        while got < upto:
            params: dict[str, Any] = {"limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            page = await self.get("/audit/entries", **params)
            items = page["items"][: upto - got]
            got += len(items)
            yield items
            cursor = page.get("next_cursor")
            if not cursor or not items:
                return

    async def entries(self, upto: int) -> AsyncIterator[dict[str, Any]]:
        """Entries 0..upto-1 in seq order."""
        async for page in self.pages(upto):
            for item in page:
                yield item


async def follow(
    client: httpx.AsyncClient,
    on_entry: Callable[[dict[str, Any]], None],
    *,
    start: int | None = None,
    limit: int | None = None,
    purpose: str = DEFAULT_PURPOSE,
) -> int | None:
    """Follow `/audit/stream`; reconnect with `Last-Event-ID` after a drop. Returns the last seq."""
    last: int | None = None if start is None else start - 1
    received = 0
    while limit is None or received < limit:
        headers = {"X-Purpose": purpose, "Accept": "text/event-stream"}
        params: dict[str, Any] = {}
        if last is not None and last >= 0:
            headers["Last-Event-ID"] = str(last)
        elif start is not None:
            params["from"] = start
        if limit is not None:
            params["limit"] = limit - received
        try:
            async with client.stream(
                "GET", "/audit/stream", headers=headers, params=params, timeout=None
            ) as response:
                if response.status_code != 200:
                    raise CheckFailedError(f"HTTP {response.status_code}")
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line.startswith("id:"):
                        last = int(line[3:].strip())
                    elif line == "" and data:
                        on_entry(json.loads("\n".join(data)))
                        data = []
                        received += 1
                if limit is not None:
                    return last
        except httpx.TransportError:
            await asyncio.sleep(1.0)
    return last

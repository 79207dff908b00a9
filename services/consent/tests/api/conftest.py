"""Helpers for the API tests: publishing a policy, reading stored events, polling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest


class Api:
    """Thin helpers over the client for things many tests need."""

    def __init__(self, client: httpx.AsyncClient, tokens: Any, db: Any) -> None:
        self.client = client
        self.tokens = tokens
        self.db = db

    async def publish_policy(
        self, version: str = "2026-11", *, effective_in: timedelta = timedelta(days=-1)
    ) -> dict[str, Any]:
        _, admin = self.tokens.headers("admin")
        response = await self.client.post(
            "/policies",
            headers=admin,
            json={
                "version": version,
                "effective_at": (datetime.now(UTC) + effective_in).isoformat(),
                "title": f"Privacy policy {version}",
                "text": f"We collect what we need ({version}).",
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def events(self, **query: Any) -> list[dict[str, Any]]:
        """Raw stored events (the event store collection) matching `query`."""
        return await self.db["events"].find(query).sort("producer_seq", 1).to_list(None)


@pytest.fixture
def api(client: httpx.AsyncClient, tokens: Any, mongo_db: Any) -> Api:
    return Api(client, tokens, mongo_db)

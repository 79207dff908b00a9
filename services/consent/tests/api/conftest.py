"""The app of a test module, and helpers many API tests need (policies, stored events)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from mmgen.consent.bootstrap import Consent
from mmgen.consent.entrypoints.app import build_app
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import PlatformApp
from mmgen.runtime.testing import Tokens, running_app


class Api:
    """Thin helpers over the client and the app's database."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens, consent: Consent) -> None:
        self.client = client
        self.tokens = tokens
        assert consent.runtime.db is not None
        self.db = consent.runtime.db

    async def publish_policy(
        self, version: str | None = None, *, effective_in: timedelta = timedelta(days=-1)
    ) -> str:
        """Publish a policy version (a fresh one by default); returns the version."""
        version = version or f"p-{uuid.uuid4().hex[:12]}"
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
        return version

    async def grant(self, headers: dict[str, str], purpose: str, version: str) -> None:
        response = await self.client.put(
            f"/consents/me/{purpose}",
            headers=headers,
            json={"granted": True, "policy_version": version},
        )
        assert response.status_code == 200, response.text

    async def mark(self) -> int:
        """The store's highest `producer_seq` now (to read only what a test appends later)."""
        last = await self.db["events"].find_one({}, sort=[("producer_seq", -1)])
        return int(last["producer_seq"]) if last else 0

    async def events(self, after: int = 0, **query: Any) -> list[dict[str, Any]]:
        """Raw stored events matching `query` (appended after the `mark` `after`)."""
        query["producer_seq"] = {"$gt": after}
        return await self.db["events"].find(query).sort("producer_seq", 1).to_list(None)


@pytest.fixture(scope="module")
def settings(consent_settings: Callable[..., ConsentSettings]) -> ConsentSettings:
    return consent_settings()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    settings: ConsentSettings, tokens: Tokens
) -> AsyncIterator[tuple[PlatformApp, httpx.AsyncClient]]:
    async with running_app(build_app(settings, key_set=tokens.key_set())) as pair:
        yield pair


@pytest.fixture(scope="module")
def app(running: tuple[PlatformApp, httpx.AsyncClient]) -> PlatformApp:
    return running[0]


@pytest.fixture(scope="module")
def client(running: tuple[PlatformApp, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


@pytest.fixture(scope="module")
def api(app: PlatformApp, client: httpx.AsyncClient, tokens: Tokens) -> Api:
    return Api(client, tokens, app.state.consent)

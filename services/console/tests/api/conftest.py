"""The console in-process over a fake identity and retention (`InMemoryServices`), its
sessions in the real local MongoDB (a database of its own per test)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mmgen.console.app import build_app
from mmgen.console.settings import ConsoleSettings
from mmgen.localstack.pytest_plugin import unique_name
from mmgen.platform.auth import TokenVerifier, issue_token
from mmgen.platform.auth.audiences import AudienceNotAllowedError, audiences_for
from mmgen.runtime.testing import Tokens

OFFICER = "officer@example.test"
CLIENT = "client@example.test"
NO_MFA = "plain@example.test"
#: Officers whose first token expires within the console's refresh margin; identity's refresh
#: gives the first a token with the second factor, the second one without.
SHORT = "short@example.test"
WEAKENED = "weakened@example.test"


class InMemoryServices:
    """Identity's `/auth/token` (with the MFA contract) and a retention `/retention/holds`."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.seen: list[Request] = []
        self.bodies: list[Any] = []
        self.refreshed: list[str] = []
        #: Every access token handed out, to look for in the console's database.
        self.issued: list[str] = []
        #: The audiences of the last sign-in (kept by a refresh, as identity does).
        self.audience: list[str] | None = None
        self.app = FastAPI()

        @self.app.post("/auth/token")
        async def token(request: Request) -> JSONResponse:
            body = await request.json()
            email = body["email"]
            role = "client" if email == CLIENT else "compliance"
            if email == OFFICER and "totp" not in body:
                return JSONResponse({"status": 401, "code": "mfa_required"}, status_code=401)
            amr = ["pwd", "otp"] if "totp" in body else ["pwd"]
            try:  # as identity: only audiences the role may hold
                self.audience = audiences_for(role, body.get("audience"))
            except AudienceNotAllowedError:
                return JSONResponse({"status": 400, "code": "invalid_target"}, status_code=400)
            ttl = timedelta(seconds=30) if email in (SHORT, WEAKENED) else timedelta(minutes=15)
            refresh = {SHORT: "r-good", WEAKENED: "r-weak"}.get(email, "r-none")
            return JSONResponse({"access_token": self._token(role, amr, ttl), "expires_in": 900,
                                 "refresh_token": refresh})  # fmt: skip

        @self.app.post("/auth/refresh")
        async def refresh(request: Request) -> JSONResponse:
            spent = (await request.json())["refresh_token"]
            self.refreshed.append(spent)
            amr = ["pwd", "otp"] if spent == "r-good" else ["pwd"]
            access = self._token("compliance", amr, timedelta(minutes=15))
            return JSONResponse({"access_token": access, "refresh_token": "r-next"})

        @self.app.api_route("/retention/holds", methods=["GET", "POST"])
        async def holds(request: Request) -> JSONResponse:
            self.seen.append(request)
            if request.method == "POST":
                self.bodies.append(await request.json())
                return JSONResponse({"hold_id": "h1"}, status_code=201)
            return JSONResponse({"items": [], "next_cursor": None})

    def _token(self, role: str, amr: list[str], ttl: timedelta) -> str:
        token = issue_token(self.tokens.key, subject="u-" + role, role=role, ttl=ttl,
                            audience=self.audience, extra_claims={"amr": amr})  # fmt: skip
        self.issued.append(token)
        return token


class ConsoleKit:
    """Console apps on one database (one deployment: replicas, or one app restarted), over
    one fake identity and retention."""

    def __init__(self, mongo_uri: str, database: str) -> None:
        self.tokens = Tokens.generate()
        self.services = InMemoryServices(self.tokens)
        self.settings = ConsoleSettings(
            environment="test",
            jwks_url=None,
            log_json=False,
            log_level="WARNING",
            mongo_uri=mongo_uri,
            mongo_database=database,
            master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        )

    @asynccontextmanager
    async def running(
        self, cookies: httpx.Cookies | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        """One console app, started and stopped; a client of it (with `cookies`, if given)."""
        upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.services.app))
        app = build_app(
            self.settings,
            token_verifier=TokenVerifier(self.tokens.key_set(), audience="console"),
            client=upstream,
        )
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://console.test", cookies=cookies
                ) as client:
                    yield client
        finally:
            await upstream.aclose()


@pytest.fixture
async def kit(mongo_uri: str, mongo_client: Any) -> AsyncIterator[ConsoleKit]:
    database = unique_name("console_")
    try:
        yield ConsoleKit(mongo_uri, database)
    finally:
        await mongo_client.drop_database(database)


@pytest.fixture
async def console(kit: ConsoleKit) -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryServices]]:
    async with kit.running() as client:
        yield client, kit.services


async def sign_in(client: httpx.AsyncClient, email: str, totp: str | None) -> httpx.Response:
    body = {"email": email, "password": "pw"} | ({"totp": totp} if totp else {})
    return await client.post("/api/session", json=body)

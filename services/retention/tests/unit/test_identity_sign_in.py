"""`IdentitySignIn` against an in-process app answering `POST /auth/token` as identity does:
an account with TOTP signs in only with a code (401 problem with `code: mfa_required`
without one, the generic 401 with a wrong one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from mmgen.retention.adapters.reauth import IdentitySignIn
from mmgen.retention.domain.credentials import SignInCredentials
from mmgen.retention.domain.errors import SecondFactorNeededError, ServiceUnreachableError

PROBLEM = "application/problem+json"


def _problem(slug: str, **members: Any) -> JSONResponse:
    body = {"type": f"urn:mmgen:problem:{slug}", "title": slug, "status": 401, **members}
    return JSONResponse(body, status_code=401, media_type=PROBLEM)


def make_identity(seen: list[dict[str, Any]]) -> FastAPI:
    """One account with TOTP (ada, code 123456) and one without (lee)."""
    app = FastAPI()

    @app.post("/auth/token")
    async def token(body: dict[str, Any]) -> JSONResponse:
        seen.append(body)
        if (body["email"], body["password"]) == ("lee@example.test", "right"):
            return JSONResponse({"access_token": "lee-token", "token_type": "Bearer"})
        if (body["email"], body["password"]) != ("ada@example.test", "right"):
            return _problem("invalid-credentials")
        if not (body.get("totp") or body.get("recovery_code")):
            return _problem("mfa-required", code="mfa_required")
        if body.get("totp") == "123456" or body.get("recovery_code") == "rc-1":
            return JSONResponse({"access_token": "ada-token", "token_type": "Bearer"})
        return _problem("invalid-credentials")

    return app


@pytest.fixture
async def sign_in() -> AsyncIterator[tuple[IdentitySignIn, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=make_identity(seen))
    async with httpx.AsyncClient(transport=transport) as client:
        yield IdentitySignIn("http://identity.test/", client), seen


async def test_an_account_without_totp_signs_in_with_its_password(
    sign_in: tuple[IdentitySignIn, list[dict[str, Any]]],
) -> None:
    check, seen = sign_in
    assert await check.access_token(SignInCredentials("lee@example.test", "right")) == "lee-token"
    assert seen == [{"email": "lee@example.test", "password": "right"}]
    assert await check.access_token(SignInCredentials("lee@example.test", "wrong")) is None


async def test_an_account_with_totp_needs_its_code(
    sign_in: tuple[IdentitySignIn, list[dict[str, Any]]],
) -> None:
    check, seen = sign_in
    with pytest.raises(SecondFactorNeededError):
        await check.access_token(SignInCredentials("ada@example.test", "right"))
    wrong = SignInCredentials("ada@example.test", "right", totp="654321")
    assert await check.access_token(wrong) is None
    right = SignInCredentials("ada@example.test", "right", totp="123456")
    assert await check.access_token(right) == "ada-token"
    recovery = SignInCredentials("ada@example.test", "right", recovery_code="rc-1")
    assert await check.access_token(recovery) == "ada-token"
    assert seen[2] == {"email": "ada@example.test", "password": "right", "totp": "123456"}
    assert seen[3] == {"email": "ada@example.test", "password": "right", "recovery_code": "rc-1"}


async def test_a_wrong_password_is_a_refusal_even_without_a_code(
    sign_in: tuple[IdentitySignIn, list[dict[str, Any]]],
) -> None:
    check, _ = sign_in
    assert await check.access_token(SignInCredentials("ada@example.test", "wrong")) is None


async def test_identity_down_is_an_outage_not_a_refusal() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        check = IdentitySignIn("http://identity.test", client)
        with pytest.raises(ServiceUnreachableError):
            await check.access_token(SignInCredentials("ada@example.test", "right", totp="1"))

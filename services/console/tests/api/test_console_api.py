"""The console's HTTP edge in-process: cookie, CSRF, CSP, refusals, and what it sends upstream.

Identity and the two upstream services are one in-memory ASGI fake (`InMemoryServices`) that
records every request it gets; the console's own behaviour is what is under test here. The
same flows against the real services, in a real browser: `tests/browser/`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mmgen.console.app import CSP
from mmgen.runtime.testing import assert_problem

from .conftest import CLIENT, NO_MFA, OFFICER, SHORT, WEAKENED, sign_in


async def test_sign_in_sets_a_strict_http_only_cookie_and_keeps_the_token(console: Any) -> None:
    client, upstream = console
    response = await sign_in(client, OFFICER, "123456")
    assert response.status_code == 201, response.text
    # The officer's token is for the console and the services it forwards it to, nothing else.
    assert upstream.audience == ["console", "consent", "retention"]
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "max-age" not in cookie and "expires" not in cookie  # the server ends it
    assert "access_token" not in response.text and "eyj" not in response.text.lower()
    session = (await client.get("/api/session")).json()
    assert session["role"] == "compliance" and session["csrf_token"]


@pytest.mark.parametrize(
    ("email", "totp", "status", "code"),
    [
        (CLIENT, "123456", 403, "role_not_allowed"),
        (NO_MFA, None, 403, "mfa_required"),
        (OFFICER, None, 401, "mfa_required"),
    ],
)
async def test_refused_sign_ins_open_no_session(
    console: Any, email: str, totp: str | None, status: int, code: str
) -> None:
    client, _ = console
    response = await sign_in(client, email, totp)
    assert assert_problem(response, status)["code"] == code
    assert "set-cookie" not in response.headers
    assert_problem(await client.get("/api/session"), 401, "console-not-signed-in")


async def test_writes_need_the_csrf_token_and_reads_carry_the_officers_token_and_purpose(
    console: Any,
) -> None:
    client, services = console
    await sign_in(client, OFFICER, "123456")
    csrf = (await client.get("/api/session")).json()["csrf_token"]
    hold = {"subject_id": "s", "categories": ["consent"], "legal_basis": "b", "owner": "o"}
    assert_problem(await client.post("/api/retention/holds", json=hold), 403, "console-csrf")
    refused = await client.post("/api/retention/holds", json=hold, headers={"X-CSRF-Token": "x"})
    assert_problem(refused, 403, "console-csrf")
    assert services.bodies == []  # nothing reached retention
    placed = await client.post("/api/retention/holds", json=hold, headers={"X-CSRF-Token": csrf})
    assert placed.status_code == 201 and services.bodies == [hold]
    listed = await client.get("/api/retention/holds?limit=5&evil=1")
    assert listed.status_code == 200
    sent = services.seen[-1]
    assert sent.headers["x-purpose"] == "legal_compliance"
    assert sent.headers["authorization"].startswith("Bearer ey")
    assert dict(sent.query_params) == {"limit": "5"}  # only the parameters the console names
    assert_problem(await client.delete("/api/session"), 403, "console-csrf")
    signed_out = await client.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert signed_out.status_code == 204
    assert_problem(await client.get("/api/retention/holds"), 401)


async def test_pages_carry_a_strict_content_security_policy(console: Any) -> None:
    client, _ = console
    for path in ("/signin", "/audit", "/audit/12", "/holds", "/static/app.js"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
    page = (await client.get("/audit")).text
    assert '<script type="module" src="/static/app.js">' in page and "onclick" not in page
    assert "'unsafe-inline'" not in CSP and "http" not in CSP


async def test_a_sign_in_from_another_origin_is_refused(console: Any) -> None:
    client, _ = console
    response = await client.post(
        "/api/session",
        json={"email": OFFICER, "password": "pw", "totp": "123456"},
        headers={"Origin": "https://evil.example"},
    )
    assert_problem(response, 403, "console-csrf")


async def test_a_token_about_to_expire_is_refreshed_and_held_to_the_same_demands(
    console: Any,
) -> None:
    client, services = console
    assert (await sign_in(client, SHORT, "123456")).status_code == 201
    first = (await client.get("/api/session")).json()
    assert services.refreshed == ["r-good"]
    assert first["expires_at"] > time.time() + 600  # the refreshed token's expiry
    second = (await client.get("/api/session")).json()
    assert services.refreshed == ["r-good"] and second["csrf_token"] == first["csrf_token"]

    assert (await sign_in(client, WEAKENED, "123456")).status_code == 201
    ended = await client.get("/api/session")
    assert_problem(ended, 401, "console-not-signed-in")
    assert "second factor" in ended.json()["detail"]
    assert_problem(await client.get("/api/session"), 401)

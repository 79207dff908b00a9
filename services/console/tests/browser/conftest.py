"""The console in a real browser, against real services as processes.

One stack per module run: identity, consent (the audit log), retention, the witness and the
console, started as `mmgen up` starts them (the same launcher and wiring: the console pins the
log's and the witness's keys) on the session's broker and database under prefixes of their
own. In front of identity runs its TOTP sign-in as its MFA contract states it
(`MfaIdentity` below). Chromium is Debian's (`make browser`), driven by Playwright.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mmgen.cli import stack
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra, unique_name
from mmgen.platform.auth import SigningKey, issue_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SERVICES = ("identity", "consent", "retention", "witness", "console")
LEGAL = {"X-Purpose": "legal_compliance"}
#: Where the screenshots go: `MMGEN_CONSOLE_SCREENSHOTS=docs/console` refreshes the committed
#: ones; otherwise a temporary folder (the tests take them either way).
SCREENSHOTS_ENV = "MMGEN_CONSOLE_SCREENSHOTS"


# --- identity's TOTP sign-in ---------------------------------------------------------------
# Identity's TOTP sign-in, as its MFA contract states it, in front of the real identity.
#
# Identity's own TOTP is being built elsewhere; the console must already demand it. This front
# keeps the contract so the browser tests exercise the console's sign-in exactly as it will run:
# `POST /auth/token {email, password, totp}` checks the password at the real identity (which
# also issues the token's subject and role); for an account enrolled here a missing code is 401
# problem+json with `code: "mfa_required"`, a wrong one 401; a right one gives a token with
# `amr: ["pwd", "otp"]`, signed by a key of the test kit that the JWKS served here publishes
# beside identity's own keys (every service of the test stack reads this JWKS). An account not
# enrolled gets identity's token unchanged (no `amr`). Test code only: no service imports it.

STEP_SECONDS = 30


def totp(secret: bytes, at: float | None = None, digits: int = 6) -> str:
    """RFC 6238 (HMAC-SHA-1, 30 s steps)."""
    counter = int((time.time() if at is None else at) // STEP_SECONDS)
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return str(code).zfill(digits)


class MfaIdentity:
    def __init__(self, identity_url: str) -> None:
        self.identity_url = identity_url
        self.key = SigningKey.generate()
        self.enrolled: dict[str, bytes] = {}
        self.app = self._build()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def enroll(self, email: str) -> bytes:
        secret = secrets.token_bytes(20)
        self.enrolled[email.lower()] = secret
        return secret

    def code(self, email: str) -> str:
        return totp(self.enrolled[email.lower()])

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=10) as client:
                theirs = (await client.get(f"{self.identity_url}/.well-known/jwks.json")).json()
            return {"keys": [*theirs["keys"], self.key.public_jwk()]}

        @app.post("/auth/token")
        async def token(request: Request) -> JSONResponse:
            body = await request.json()
            code = body.pop("totp", None)
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(f"{self.identity_url}/auth/token", json=body)
            secret = self.enrolled.get(str(body.get("email", "")).lower())
            if answer.status_code != 200 or secret is None:
                return JSONResponse(answer.json(), status_code=answer.status_code)
            if not code:
                return _problem("mfa_required", "a one-time code is required for this account")
            now = time.time()  # the step before counts too (RFC 6238, 5.2: network delay)
            accepted = (totp(secret, now), totp(secret, now - STEP_SECONDS))
            if not any(hmac.compare_digest(str(code), ok) for ok in accepted):
                return _problem("mfa_invalid", "the one-time code is not right")
            claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
            access = issue_token(
                self.key, subject=claims["sub"], role=claims["role"],
                extra_claims={"amr": ["pwd", "otp"]},
            )  # fmt: skip
            return JSONResponse({**answer.json(), "access_token": access})

        return app

    def start(self, port: int) -> str:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the MFA front did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)


def _problem(code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": f"urn:mmgen:problem:{code.replace('_', '-')}", "title": "Unauthorized",
         "status": 401, "detail": detail, "code": code},
        status_code=401,
        media_type="application/problem+json",
    )  # fmt: skip


@dataclass
class Person:
    user_id: str
    email: str
    password: str
    token: str


@dataclass
class ConsoleStack:
    config: stack.StackConfig
    components: list[stack.Component]
    mfa: MfaIdentity
    admin_email: str
    admin_password: str
    people: dict[str, Person] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    @property
    def console(self) -> str:
        return self.url("console")

    def database(self, service: str) -> str:
        return self.config.database_prefix + service

    def sign_in(self, email: str, password: str) -> str:
        r = httpx.post(f"{self.url('identity')}/auth/token",
                       json={"email": email, "password": password}, timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def register(self, role: str = "client") -> Person:
        email = f"{role}-{secrets.token_hex(4)}@example.test"
        password = secrets.token_urlsafe(18)
        r = httpx.post(
            f"{self.url('identity')}/auth/register",
            json={"email": email, "password": password, "name": "Mia Rossi", "role": role},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return Person(r.json()["user_id"], email, password, self.sign_in(email, password))

    def staff_account(self, role: str = "compliance") -> Person:
        admin = self.sign_in(self.admin_email, self.admin_password)
        email = f"{role}-{secrets.token_hex(4)}@example.test"
        password = secrets.token_urlsafe(18)
        r = httpx.post(
            f"{self.url('identity')}/admin/users",
            json={"email": email, "password": password, "name": "Officer", "role": role},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return Person(r.json()["user_id"], email, password, self.sign_in(email, password))

    def publish_policy(self) -> str:
        version = f"console-{secrets.token_hex(4)}"
        admin = self.sign_in(self.admin_email, self.admin_password)
        r = httpx.post(
            f"{self.url('consent')}/policies",
            json={"version": version, "effective_at": "2026-01-01T00:00:00Z",
                  "title": "Privacy policy", "text": "We keep only what we need."},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return version

    def decide(self, person: Person, version: str, purpose: str, granted: bool) -> None:
        r = httpx.put(
            f"{self.url('consent')}/consents/me/{purpose}",
            json={"granted": granted, "policy_version": version},
            headers={"Authorization": f"Bearer {person.token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def console_stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    found = {s.name: s for s in stack.discover_services() if s.name in SERVICES}
    assert set(found) == set(SERVICES), f"installed: {sorted(found)}"
    ports = {name: free_port() for name in SERVICES}
    mfa = MfaIdentity(f"http://127.0.0.1:{ports['identity']}")
    front = mfa.start(free_port())
    admin_email = f"admin-{secrets.token_hex(4)}@example.test"
    admin_password = secrets.token_urlsafe(18)
    jwks = f"{front}/.well-known/jwks.json"
    config = stack.StackConfig(
        state_dir=tmp_path_factory.mktemp("console"),
        service_ports=ports,
        topic_prefix=unique_name("con") + ".",
        database_prefix=unique_name("con_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        ready_timeout=60.0,
        extra_env={
            "IDENTITY_BOOTSTRAP_ADMIN_EMAIL": admin_email,
            "IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
            "RETENTION_SERVICES": json.dumps(["identity", "consent", "retention"]),
            "RETENTION_SCHEDULER_INTERVAL_SECONDS": "3",
            "CONSENT_AUDIT_CHECKPOINT_EVERY_SECONDS": "1",
            "CONSENT_JWKS_URL": jwks,
            "RETENTION_JWKS_URL": jwks,
            "CONSOLE_JWKS_URL": jwks,
            "CONSOLE_IDENTITY_URL": front,
        },
    )
    components: list[stack.Component] = []
    try:
        components.extend(stack.start_services(config, list(found.values())))
        yield ConsoleStack(config, components, mfa, admin_email, admin_password)
    finally:
        stack.stop_components(components)
        mfa.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def officer(console_stack: ConsoleStack) -> Person:
    """A compliance officer with TOTP enrolled."""
    person = console_stack.staff_account("compliance")
    console_stack.mfa.enroll(person.email)
    return person


def sign_in_page(page: Any, s: ConsoleStack, person: Person, code: str | None) -> None:
    page.goto(f"{s.console}/signin")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    if code is not None:
        page.get_by_label("One-time code").fill(code)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def signed_in(browser: Any, console_stack: ConsoleStack, officer: Person) -> Iterator[Any]:
    """A page of a browser context signed in as the officer (password and TOTP)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_page(page, console_stack, officer, console_stack.mfa.code(officer.email))
    try:
        page.wait_for_url(f"{console_stack.console}/audit", timeout=15_000)
    except Exception:
        print("sign-in page shows:", page.locator("main").inner_text())
        raise
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def poll(probe: Callable[[], Any], until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s: {value}"
        time.sleep(0.2)

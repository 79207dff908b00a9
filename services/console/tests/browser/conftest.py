"""The console in a real browser, against real services as processes.

One stack per test session: identity, consent (the audit log), retention, the witness and the
console, started as `mmgen up` starts them (the same launcher and wiring: the console pins the
log's and the witness's keys) on the session's broker and database under prefixes of their
own, and seeded once with the demo data by the code `mmgen demo` runs (`mmgen.cli.demo.seed`,
through the services' public APIs). The browser signs in as the demo's compliance officer,
Casey Compliance, with the password and a TOTP code computed from the secret the demo keeps in
its credentials file (`<state>/demo/accounts.json`), as a person with that file and an
authenticator app would. Chromium is Debian's (`make system-packages`), driven by Playwright.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from mmgen.cli import demo, signin, stack
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra, unique_name
from mmgen.platform.totp import Authenticator

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


@dataclass
class Person:
    user_id: str
    email: str
    password: str
    token: str
    #: The TOTP app of an enrolled account (None: password only).
    authenticator: Authenticator | None = None


@dataclass
class Demo:
    """The demo data set `mmgen demo` seeded, read back from its credentials file."""

    state: demo.DemoState
    #: What `mmgen demo` printed (the accounts, the signed head covering the demo).
    printed: str
    people: dict[str, Person] = field(default_factory=dict)

    def user_id(self, key: str) -> str:
        return str(self.state.accounts[key]["user_id"])

    def person(self, key: str) -> Person:
        """A demo account by its key (`compliance`, `client.acme`, `creator.mia`, …), with an
        authenticator on the file's TOTP secret (and the steps the demo used) if it has one.
        One object per account, so no code is offered twice."""
        if key not in self.people:
            record = self.state.accounts[key]
            app = None
            if record.get("totp_secret"):
                app = Authenticator(record["totp_secret"], record.get("totp_used_steps", []))
            self.people[key] = Person(
                self.user_id(key), record["email"], record["password"], "", app
            )
        return self.people[key]


@dataclass
class ConsoleStack:
    config: stack.StackConfig
    components: list[stack.Component]
    admin_email: str
    admin_password: str
    authenticators: signin.Authenticators = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    @property
    def console(self) -> str:
        return self.url("console")

    def database(self, service: str) -> str:
        return self.config.database_prefix + service

    def sign_in(self, email: str, password: str) -> str:
        """A password-only token (a client's, or staff's before they enrol)."""
        body = {"email": email, "password": password}
        r = httpx.post(f"{self.url('identity')}/auth/token", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def signed_in_with_a_code(self, email: str, password: str) -> tuple[str, Authenticator]:
        """A token with "otp" in `amr`, TOTP enrolled with the password-only token the first
        time (as an officer does once), and the account's authenticator."""
        identity = self.url("identity")
        with httpx.Client(timeout=10) as http:
            token = signin.sign_in_sync(http, identity, email, password, self.authenticators)
        return token, self.authenticators[(identity, email.lower())]

    def admin_token(self) -> str:
        return self.signed_in_with_a_code(self.admin_email, self.admin_password)[0]

    def register(self, role: str = "client") -> Person:
        email = f"{role}-{secrets.token_hex(4)}@example.test"
        password = secrets.token_urlsafe(18)
        r = httpx.post(
            f"{self.url('identity')}/auth/register",
            json={"email": email, "password": password, "name": "Mia Rossi", "role": role},
            timeout=10,
        )
        assert r.status_code == 202, r.text  # the same answer for a taken address: no id
        token = self.sign_in(email, password)
        me = httpx.get(f"{self.url('identity')}/users/me",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
        assert me.status_code == 200, me.text
        return Person(me.json()["user_id"], email, password, token)

    def staff_account(self, role: str = "compliance", *, enrolled: bool = False) -> Person:
        """A staff account made by the admin; with `enrolled`, TOTP set up and its token
        signed in with a code (without, its token is password-only)."""
        email = f"{role}-{secrets.token_hex(4)}@example.test"
        password = secrets.token_urlsafe(18)
        r = httpx.post(
            f"{self.url('identity')}/admin/users",
            json={"email": email, "password": password, "name": "Officer", "role": role},
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        if not enrolled:
            return Person(r.json()["user_id"], email, password, self.sign_in(email, password))
        token, app = self.signed_in_with_a_code(email, password)
        return Person(r.json()["user_id"], email, password, token, app)

    def publish_policy(self) -> str:
        version = f"console-{secrets.token_hex(4)}"
        admin = self.admin_token()
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


@pytest.fixture(scope="session")
def console_stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    found = {s.name: s for s in stack.discover_services() if s.name in SERVICES}
    assert set(found) == set(SERVICES), f"installed: {sorted(found)}"
    ports = {name: free_port() for name in SERVICES}
    admin = stack.BootstrapAdmin.fresh()
    config = stack.StackConfig(
        state_dir=tmp_path_factory.mktemp("console"),
        service_ports=ports,
        topic_prefix=unique_name("con") + ".",
        database_prefix=unique_name("con_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        ready_timeout=60.0,
        extra_env={
            **admin.env(),
            "RETENTION_SERVICES": json.dumps(["identity", "consent", "retention"]),
            "RETENTION_SCHEDULER_INTERVAL_SECONDS": "3",
            "CONSENT_AUDIT_CHECKPOINT_EVERY_SECONDS": "1",
        },
    )
    components: list[stack.Component] = []
    try:
        components.extend(stack.start_services(config, list(found.values())))
        yield ConsoleStack(config, components, admin.email, admin.password)
    finally:
        stack.stop_components(components)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-packages` (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def demo_data(console_stack: ConsoleStack) -> Demo:
    """The demo seeded once per session by `mmgen demo`'s own code, against this stack (the
    stack record in its state folder says which services run, as under `mmgen up`)."""
    state_dir = console_stack.config.state_dir
    printed = io.StringIO()
    demo.seed(state_dir, out=Console(file=printed, width=400))
    data = Demo(demo.DemoState.load(state_dir), printed.getvalue())
    assert "Audit log: a signed tree head covers" in data.printed, data.printed
    return data


@pytest.fixture(scope="session")
def officer(demo_data: Demo) -> Person:
    """The demo's compliance officer, Casey Compliance: TOTP enrolled by the demo."""
    officer = demo_data.person("compliance")
    assert demo_data.state.accounts["compliance"]["name"] == "Casey Compliance"
    assert officer.authenticator is not None, "the demo enrols TOTP for compliance staff"
    return officer


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
    sign_in_page(
        page,
        console_stack,
        officer,
        officer.authenticator.code() if officer.authenticator else None,
    )
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

"""identity's test kit, on top of the runtime's (`mmgen.runtime.testing`).

    from services.identity.tests.identity_kit import Running, running, identity_settings

`running(settings)` runs the app in-process (its lifespan, an httpx client on it) and gives a
`Running` with the helpers most tests need: accounts with tokens, staff, service tokens, the
raw event documents of the store. Values are random (emails, passphrases, ids), so the tests
of a module share one app without depending on each other.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.envelope import Envelope
from mmgen.events.kernel import in_memory_kernel
from mmgen.identity.adapters.hashing import PasswordHashing, service_secret
from mmgen.identity.bootstrap import IdentityService, bootstrap
from mmgen.identity.domain.events import UserRole, identity_registry
from mmgen.identity.entrypoints.app import build_app
from mmgen.identity.service_layer.accounts import Registration
from mmgen.identity.service_layer.credentials import SecondFactor
from mmgen.identity.settings import IdentitySettings
from mmgen.localstack.mailsink import StoredMail, read_messages
from mmgen.platform import PlatformApp, totp
from mmgen.runtime.testing import (
    command_key_settings,
    erase_command,
    eventually,
    publish_command,
    running_app,
    service_settings,
)

WORDS = (
    "amber", "basalt", "cobalt", "dune", "ember", "fjord", "glacier", "harbor", "indigo",
    "juniper", "kelp", "lagoon", "meadow", "nectar", "orchid", "prairie", "quartz", "raven",
    "saffron", "tundra", "umber", "velvet", "willow", "xylem", "yonder", "zephyr",
)  # fmt: skip


def passphrase() -> str:
    """A random four-word passphrase (well above the length floor, on no blocklist)."""
    return " ".join(secrets.choice(WORDS) for _ in range(4)) + f" {secrets.randbelow(10_000)}"


def unique_email(tag: str = "user") -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.org"


#: A rotated key signs at once in tests (the publish delay is tested on its own, with a delay).
IMMEDIATE_ROTATION = {"signing_key_publish_seconds": 0}


def identity_settings(infra: Any, **overrides: Any) -> IdentitySettings:
    """Settings for one app under test: its own database and topic prefix, fast group joins,
    random secrets, rotations that switch at once, mail to the session's SMTP sink, unless
    `overrides` say otherwise."""
    mail = {
        "smtp_host": infra.smtp_host,
        "smtp_port": infra.smtp_port,
        "smtp_starttls": False,
        "mail_poll_seconds": 0.5,
        # Every test client has one address: registrations are throttled per address.
        "mail_requests_max_per_address": 100_000,
    }
    return service_settings(IdentitySettings, infra, **{**IMMEDIATE_ROTATION, **mail, **overrides})


def memory_identity(**ports: Any) -> IdentityService:
    """identity over the in-memory kernel and fakes, with cheap argon2 (unit tests: no I/O)."""
    settings = IdentitySettings(
        environment="test",
        log_json=False,
        log_level="WARNING",
        mail_requests_max_per_address=100_000,
        **IMMEDIATE_ROTATION,
        **command_key_settings(),
    )
    kernel = in_memory_kernel(producer="identity", registry=identity_registry())
    ports.setdefault("hashing", PasswordHashing(memory_kib=8, time_cost=1, parallelism=1))
    return bootstrap(settings, kernel=kernel, **ports)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored_events(identity: IdentityService, event_type: str | None = None) -> list[Envelope]:
    """Every event in identity's store, in order (only those of `event_type`, when given)."""
    store = identity.kernel.store
    events = await store.read_range(1, await store.last_seq() + 1)
    return [e for e in events if event_type is None or e.event_type == event_type]


TOKEN_LINE = re.compile(r"^token: (\S+)", re.MULTILINE)


def token_in(text: str) -> str:
    """The one-time token of a verification or reset mail."""
    found = TOKEN_LINE.search(text)
    assert found is not None, text
    return found.group(1)


#: Codes of a TOTP secret, each step once (`codes.next()`), as an authenticator app gives them.
TotpCodes = totp.Authenticator


@dataclass
class Running:
    """An identity app running in this process, and an httpx client on it."""

    app: PlatformApp
    client: httpx.AsyncClient
    settings: IdentitySettings
    #: Where the session's SMTP sink keeps what it got (`infra.mail_dir`).
    mail_dir: Path | None = None

    @property
    def identity(self) -> IdentityService:
        identity: IdentityService = self.app.state.identity
        return identity

    @property
    def db(self) -> AsyncDatabase[Any]:
        db = self.identity.runtime.db
        assert db is not None
        return db

    @property
    def events_topic(self) -> str:
        return self.settings.topic("identity.events")

    async def register(self, **overrides: Any) -> dict[str, Any]:
        """Register through the API (202, no id in the answer) and learn the id by signing in."""
        body: dict[str, Any] = {
            "email": unique_email(),
            "password": passphrase(),
            "name": "Ada Lovelace",
            "role": "client",
        }
        body.update(overrides)
        response = await self.client.post("/auth/register", json=body)
        assert response.status_code == 202, response.text
        tokens = await self.login(body["email"], body["password"])
        me = await self.client.get("/users/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        return {**body, "user_id": me.json()["user_id"], "tokens": tokens}

    async def login(self, email: str, password: str, **factor: str) -> dict[str, Any]:
        """Sign in (`factor`: `totp=` or `recovery_code=` for an account with TOTP)."""
        response = await self.client.post(
            "/auth/token", json={"email": email, "password": password, **factor}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    # --- mail (the session's SMTP sink) -----------------------------------------------------------

    async def mails_to(self, email: str, subject: str = "", count: int = 1) -> list[StoredMail]:
        """The messages the sink got for `email` whose subject contains `subject`, once there
        are `count` of them."""
        assert self.mail_dir is not None, "no SMTP sink (infra.mail_dir) for this app"
        mail_dir = self.mail_dir

        async def found() -> list[StoredMail]:
            return [m for m in read_messages(mail_dir, to=email) if subject in m.subject]

        return await eventually(found, until=lambda got: len(got) >= count, timeout=20)

    async def mailed_token(self, email: str, subject: str, index: int = -1) -> str:
        mails = await self.mails_to(email, subject, count=abs(index) if index < 0 else index + 1)
        return token_in(mails[index].text())

    async def user_with_token(self, **overrides: Any) -> dict[str, Any]:
        """A registered account and the tokens of its (one) sign-in."""
        user = await self.register(**overrides)
        tokens = user.pop("tokens")
        return {**user, **tokens, "auth": bearer(tokens["access_token"])}

    async def staff(self, role: UserRole = "staff", *, mfa: bool = True) -> dict[str, Any]:
        """A staff/compliance/admin account (created through the use case, as an admin would)
        and its token: with TOTP enrolled and a token whose `amr` has "otp" (what these roles
        need to reach personal data), or with `mfa=False` a password-only token."""
        email, password = unique_email(role), passphrase()
        user_id = await self.identity.accounts.register(
            Registration(email=email, password=password, name=f"Test {role}", role=role),
            registered_by="admin",
        )
        account: dict[str, Any] = {"user_id": user_id, "email": email, "password": password}
        factor: dict[str, str] = {}
        if mfa:
            account.update(await self.enrol_totp(user_id, password))
            factor = {"totp": account["totp"].next()}
        tokens = await self.login(email, password, **factor)
        return {**account, **tokens, "auth": bearer(tokens["access_token"])}

    async def enrol_totp(self, user_id: str, password: str) -> dict[str, Any]:
        """Enrol and confirm TOTP through the use cases; `totp` gives unused codes."""
        enrolment = await self.identity.credentials.enrol_totp(
            user_id, password, SecondFactor(), "192.0.2.1"
        )
        codes = TotpCodes(enrolment.secret)
        await self.identity.credentials.confirm_totp(user_id, codes.next())
        return {
            "totp_secret": enrolment.secret,
            "recovery_codes": enrolment.recovery_codes,
            "totp": codes,
        }

    async def service_auth(self, service: str = "retention") -> dict[str, str]:
        secret = service_secret(self.identity.service_credentials_key, service)
        response = await self.client.post(
            "/auth/service-token", json={"service": service, "secret": secret}
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    # --- what the store holds ------------------------------------------------------------------

    async def stored_events(self, **query: Any) -> list[dict[str, Any]]:
        """Raw event documents of the store matching `query` (e.g. `subject_id=...`)."""
        found = [doc async for doc in self.db["events"].find(query)]
        found.sort(key=lambda d: d.get("producer_seq") or 0)
        return found

    async def event_types(self, **query: Any) -> list[str]:
        return [doc["event_type"] for doc in await self.stored_events(**query)]

    async def stored_counts(self) -> dict[str, int]:
        """What a refused request must leave as it was: the events other than `AccessDenied`
        (every 401/403 records one), the accounts, email reservations and refresh tokens."""
        return {
            "events": await self.db["events"].count_documents(
                {"event_type": {"$ne": "identity.AccessDenied"}}
            ),
            "users": await self.db["users"].count_documents({}),
            "email_index": await self.db["email_index"].count_documents({}),
            "refresh_tokens": await self.db["refresh_tokens"].count_documents({}),
        }

    async def stored_password_hash(self, user_id: str) -> str:
        """The password hash as stored: the `UserRegistered` event's sealed part, decrypted."""
        [doc] = await self.stored_events(subject_id=user_id, event_type="identity.UserRegistered")
        mapper = self.identity.kernel.mapper
        event = await mapper.to_domain(Envelope.from_document(doc))
        password_hash: str = event.personal.password_hash
        return password_hash

    # --- retention's commands --------------------------------------------------------------------

    async def erase(self, subject_id: str, held: Sequence[str] = (), **fixed: Any) -> str:
        """Publish a `retention.EraseSubject` as retention would; returns the command's id."""
        command = erase_command(subject_id, held, **fixed)
        await publish_command(self.settings, command)
        return command.event_id

    async def erased_events(self, subject_id: str, count: int = 1) -> list[dict[str, Any]]:
        """The subject's `identity.SubjectErased` answers, once there are `count` of them."""

        async def answers() -> list[dict[str, Any]]:
            return await self.stored_events(
                subject_id=subject_id, event_type="identity.SubjectErased"
            )

        return await eventually(answers, until=lambda found: len(found) >= count, timeout=40)


@asynccontextmanager
async def running(
    settings: IdentitySettings, *, keep_database: bool = False, mail_dir: Path | None = None
) -> AsyncIterator[Running]:
    """Build the app, run its lifespan, give an httpx client bound to it; drop its database
    afterwards unless `keep_database` (a restart test starts another app on it)."""
    app = build_app(settings)
    base_url = "http://identity.test"
    async with running_app(app, base_url=base_url, drop_database=not keep_database) as (_, client):
        yield Running(app, client, settings, mail_dir)

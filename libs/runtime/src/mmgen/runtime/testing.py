"""The testing kit every service's tests share: settings, tokens, the app in-process, commands.

    settings = service_settings(ProjectsSettings, infra)          # own database + topic prefix
    tokens = Tokens(SigningKey.generate())                        # tokens as identity issues them
    async with running_app(build_app(settings, key_set=tokens.key_set())) as (app, client):
        r = await client.get("/projects", headers=tokens.headers("client")[1])
        assert_problem(r, 401)
    await publish_command(settings, erase_command(subject_id))     # as retention would, signed

A service's conftest builds module-scoped fixtures from these (`loop_scope="module"`), so an
app starts once per test module, not once per test.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import SecretBytes, SecretStr
from pymongo import AsyncMongoClient

from mmgen.auditlog.receipt import ReceiptSigner, b64url_encode
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.platform import PlatformApp, ServiceSettings
from mmgen.platform.auth import (
    AMR_OTP,
    AMR_PASSWORD,
    MFA_REQUIRED_ROLES,
    Role,
    SigningKey,
    StaticKeySet,
    issue_token,
)
from mmgen.runtime.commands import SIGNATURE_FIELD, sign_command
from mmgen.runtime.settings import LOCAL_BROKER_FETCH_MAX_WAIT_MS

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")

#: Signs the kit's retention commands as retention would (a key of this test process only).
COMMAND_SIGNER = ReceiptSigner(secrets.token_bytes(32))
#: `retention_command_keys` pinning `COMMAND_SIGNER`: what `service_settings` gives every app.
COMMAND_KEYS: tuple[str, ...] = (b64url_encode(COMMAND_SIGNER.jwk.public_key),)


def command_key_settings() -> dict[str, Any]:
    """Settings that make a service obey the kit's signed commands (for settings built by hand,
    e.g. over the in-memory kernel)."""
    return {"retention_command_keys": COMMAND_KEYS}


def random_secrets(cls: type[ServiceSettings]) -> dict[str, SecretStr | SecretBytes]:
    """A fresh random value for every secret setting with a default (a `dev_secret(...)`).

    Services refuse to start with development secrets under `environment=test` too; these are
    the explicit, test-only secrets that let an app under test start. Each is base64 of 32
    random bytes, which every key setting accepts (`mmgen.platform.key_bytes`).
    """
    values: dict[str, SecretStr | SecretBytes] = {}
    for name, field in cls.model_fields.items():
        raw = secrets.token_bytes(32)
        if isinstance(field.default, SecretStr):
            values[name] = SecretStr(base64.b64encode(raw).decode("ascii"))
        elif isinstance(field.default, SecretBytes):
            values[name] = SecretBytes(raw)
    return values


def service_settings(cls: type[S], infra: Any, **overrides: Any) -> S:
    """Settings for one app under test: its own database and topic prefix, fast group joins,
    and random real secrets (`random_secrets`) unless `overrides` gives them."""
    name = cls.model_fields["service_name"].default
    values: dict[str, Any] = {
        "environment": "test",
        "mongo_uri": infra.mongo_uri,
        "mongo_database": f"t_{name}_{uuid.uuid4().hex[:10]}",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "consumer_session_timeout_ms": 2000,
        "consumer_heartbeat_interval_ms": 500,
        "consumer_fetch_max_wait_ms": LOCAL_BROKER_FETCH_MAX_WAIT_MS,
        "relay_idle_wait_seconds": 0.2,
        "relay_lease_ttl_seconds": 3.0,
        "projector_idle_wait_seconds": 0.2,
        "jwks_url": None,
        "log_json": False,
        "log_level": "WARNING",
        **command_key_settings(),
        **random_secrets(cls),
    }
    values.update(overrides)
    return cls(**{k: v for k, v in values.items() if k in cls.model_fields})


def amr_for(role: str, amr: Sequence[str] | None = None) -> list[str] | None:
    """The `amr` of a token of `role`: as given, else ["pwd", "otp"] for staff, compliance and
    admin (they must sign in with TOTP), ["pwd"] for other people, none for services."""
    if amr is not None:
        return list(amr)
    if role == Role.service:
        return None
    if role in MFA_REQUIRED_ROLES:
        return [AMR_PASSWORD, AMR_OTP]
    return [AMR_PASSWORD]


@dataclass
class Tokens:
    """Issues access tokens as identity would (EdDSA, `kid`), for any subject and role."""

    key: SigningKey
    #: The `aud` of every token: None gives every service the role may use, as identity does
    #: by default; a test service of its own name passes that name.
    audience: str | Sequence[str] | None = None

    @classmethod
    def generate(cls, audience: str | Sequence[str] | None = None) -> Tokens:
        return cls(SigningKey.generate(), audience)

    def key_set(self) -> StaticKeySet:
        return StaticKeySet.of(self.key)

    def __call__(
        self, role: str = "client", subject: str | None = None, amr: Sequence[str] | None = None
    ) -> tuple[str, str]:
        """A token; `amr` defaults to what identity gives a user who signed in as the role
        requires (`amr_for`), so a privileged role's token passes the second-factor check.
        A person's token says they signed in now (`auth_time`), as identity's sign-in does."""
        sub = subject or str(uuid.uuid4())
        token = issue_token(
            self.key,
            subject=sub,
            role=role,
            amr=amr_for(role, amr),
            audience=self.audience,
            auth_time=None if role == Role.service else datetime.now(UTC),
        )
        return sub, token

    def headers(
        self,
        role: str = "client",
        subject: str | None = None,
        purpose: str | None = None,
        amr: Sequence[str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        sub, token = self(role, subject, amr)
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers["X-Purpose"] = purpose
        return sub, headers


@asynccontextmanager
async def running_app(
    app: PlatformApp, *, base_url: str = "http://service.test", drop_database: bool = True
) -> AsyncIterator[tuple[PlatformApp, httpx.AsyncClient]]:
    """Run the app's lifespan and give an httpx client bound to it; drop its database after."""
    settings: ServiceSettings = app.state.settings
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
                yield app, client
    finally:
        if drop_database:
            mongo: Any = AsyncMongoClient(settings.mongo_uri)
            try:
                await mongo.drop_database(settings.mongo_database)
            finally:
                await mongo.close()


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and `type` slug, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert member in body
    if slug is not None:
        assert body["type"] == f"urn:mmgen:problem:{slug}", body
    return body


def signed(command: Envelope, signer: ReceiptSigner | None = COMMAND_SIGNER) -> Envelope:
    """`command` with the signature `signer` gives it (None: unsigned, as a forger sends it)."""
    data = {k: v for k, v in command.data.items() if k != SIGNATURE_FIELD}
    if signer is not None:
        data[SIGNATURE_FIELD] = sign_command(
            signer,
            event_id=command.event_id,
            event_type=command.event_type,
            subject_id=command.subject_id,
            data=data,
        )
    return command.model_copy(update={"data": data})


def erase_command(
    subject_id: str,
    held: Sequence[str] = (),
    *,
    signer: ReceiptSigner | None = COMMAND_SIGNER,
    **fixed: Any,
) -> Envelope:
    """A `retention.EraseSubject` command as retention publishes it, signed by `signer`
    (`fixed`: envelope fields)."""
    request_id = str(uuid.uuid4())
    command = Envelope(
        event_type="retention.EraseSubject",
        schema_version=1,
        producer="retention",
        producer_seq=1,
        stream_id=f"privacy-request-{request_id}",
        stream_version=1,
        subject_id=subject_id,
        actor=Actor(id="retention", role="service"),
        purpose="legal_compliance",
        action="erase",
        resource=Resource(type="subject", id=subject_id),
        data={"request_id": request_id, "subject_id": subject_id, "categories_held": list(held)},
        **fixed,
    )
    return signed(command, signer)


def anonymize_command(
    resource_type: str,
    resource_id: str,
    *,
    signer: ReceiptSigner | None = COMMAND_SIGNER,
    **fixed: Any,
) -> Envelope:
    """A `retention.AnonymizeResource` command as retention publishes it, signed by `signer`."""
    request_id = str(uuid.uuid4())
    command = Envelope(
        event_type="retention.AnonymizeResource",
        schema_version=1,
        producer="retention",
        producer_seq=1,
        stream_id=f"retention-run-{request_id}",
        stream_version=1,
        actor=Actor(id="retention", role="service"),
        purpose="legal_compliance",
        action="erase",
        resource=Resource(type=resource_type, id=resource_id),
        data={"request_id": request_id, "resource": {"type": resource_type, "id": resource_id}},
        **fixed,
    )
    return signed(command, signer)


async def publish(bootstrap: str, topic: str, *envelopes: Envelope) -> None:
    """Publish envelopes to a topic as a producer service would (key: subject, else stream)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, envelope.to_wire(), key=envelope.kafka_key())
    finally:
        await producer.stop()


async def publish_command(settings: ServiceSettings, *commands: Envelope) -> None:
    """Publish commands on the settings' `retention.commands` topic."""
    await publish(settings.kafka_bootstrap, settings.topic("retention.commands"), *commands)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    timeout: float = 15.0,  # noqa: ASYNC109 - a deadline, not an I/O timeout
    interval: float = 0.05,
) -> T:
    """Poll `probe` until `until(result)`; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s; last: {result!r}")
        await asyncio.sleep(interval)

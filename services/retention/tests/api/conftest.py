"""The retention app of a test module on the session's real broker and database, and the world
around it: the other services (in-memory directory), identity's password check, and the audit
log, whose entries the test appends and publishes on `audit.log` as consent would.

Expected services in these tests: identity, consent and retention itself (`RETENTION_SERVICES`).
identity's and consent's answers to retention's commands are published by the test on their
events topics; retention answers its own commands through the runtime, as in production.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from mmgen.events.envelope import Envelope, Resource
from mmgen.platform import PlatformApp
from mmgen.platform.auth import issue_token
from mmgen.retention.adapters.memory import (
    InMemoryAuditLogAnswers,
    InMemoryAuditLogHeads,
    InMemoryPasswordCheck,
    InMemoryServiceDirectory,
)
from mmgen.retention.bootstrap import Retention, bootstrap
from mmgen.retention.entrypoints.app import build_app
from mmgen.retention.settings import RetentionSettings
from mmgen.runtime.contract import Footprint
from mmgen.runtime.testing import Tokens, amr_for, eventually, running_app, service_settings

from ..harness import PURPOSES, FakeLog

SERVICES = ("identity", "consent", "retention")
OTHERS = ("identity", "consent")
LEGAL = {"X-Purpose": "legal_compliance"}


@dataclass
class World:
    """What surrounds retention in these tests (one per module)."""

    settings: RetentionSettings
    tokens: Tokens
    directory: InMemoryServiceDirectory
    heads: InMemoryAuditLogHeads
    passwords: InMemoryPasswordCheck
    log: FakeLog = field(default_factory=FakeLog)
    #: Holds nothing: these tests bring every entry through `audit.log`.
    answers: InMemoryAuditLogAnswers = field(default_factory=InMemoryAuditLogAnswers)
    producer: AIOKafkaProducer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def publish(self, topic: str, value: bytes, key: bytes) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(self.settings.topic(topic), value, key=key)

    async def audit(self, envelope: Envelope) -> int:
        """Append `envelope`'s audit entry (as consent's projector would) and publish it on
        `audit.log`; the signed head then covers it. Returns its seq."""
        async with self.lock:
            doc = self.log.append(
                event_id=envelope.event_id,
                producer=envelope.producer,
                event_type=envelope.event_type,
                action=envelope.action,
                at=envelope.occurred_at,
                subject_id=envelope.subject_id,
                actor_id=envelope.actor.id if envelope.actor else None,
                actor_role=envelope.actor.role if envelope.actor else None,
                purpose=envelope.purpose,
                resource={"type": envelope.resource.type, "id": envelope.resource.id},
                categories=tuple(sorted(envelope.categories)),
            )
            key = (envelope.subject_id or envelope.producer).encode()
            await self.publish("audit.log", json.dumps(doc).encode(), key)
            self.heads.checkpoint = self.log.head()
            return int(doc["seq"])

    async def answer(
        self, command: Envelope, service: str, *, held: list[str] | None = None
    ) -> Envelope:
        """`service` obeys `command`: its `SubjectErased` on its topic, then in the log."""
        subject = str(command.data["subject_id"])
        held = sorted(set(command.data["categories_held"]) if held is None else set(held))
        answer = Envelope(
            event_type=f"{service}.SubjectErased",
            schema_version=1,
            producer=service,
            producer_seq=1,
            stream_id=f"erasure:{command.event_id}",
            stream_version=1,
            subject_id=subject,
            actor=command.actor,
            purpose="legal_compliance",
            action="erase",
            resource=Resource(type="subject", id=subject),
            causation_id=command.event_id,
            data={
                "request_id": command.data["request_id"],
                "subject_id": subject,
                "keys_shredded": 1,
                "records_deleted": {"contact": 1},
                "records_anonymized": {},
                "categories_held": held,
            },
        )
        await self.publish(f"{service}.events", answer.to_wire(), subject.encode())
        await self.audit(answer)
        return answer

    def footprint(self, service: str, subject: str, **readable: int) -> None:
        """What `service` still shows on `subject` (readable fields per category)."""
        self.directory.footprints[(service, subject)] = Footprint.of(
            service, subject, key_erased=not any(readable.values()), records=readable,
            readable=readable,
        )  # fmt: skip

    def stale_headers(self, role: str, subject: str) -> dict[str, str]:
        """A token issued just now (as a refresh issues one) whose sign-in was 10 minutes ago
        (`auth_time`): not recent enough to erase."""
        token = issue_token(
            self.tokens.key,
            subject=subject,
            role=role,
            amr=amr_for(role),
            auth_time=datetime.now(UTC) - timedelta(minutes=10),
        )
        return {"Authorization": f"Bearer {token}"}

    def headers_without_sign_in_time(self, role: str, subject: str) -> dict[str, str]:
        """A token issued just now that does not say when its sign-in was."""
        token = issue_token(self.tokens.key, subject=subject, role=role, amr=amr_for(role))
        return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """The running app, its client and its container."""

    app: PlatformApp
    client: httpx.AsyncClient
    retention: Retention
    world: World

    @property
    def db(self) -> Any:
        assert self.retention.runtime.db is not None
        return self.retention.runtime.db

    async def stored(self, **query: Any) -> list[dict[str, Any]]:
        """Raw events of retention's store matching `query`, in producer_seq order."""
        return await self.db["events"].find(query).sort("producer_seq", 1).to_list(None)

    async def stored_one(self, **query: Any) -> Envelope:
        docs = await eventually(lambda: self.stored(**query))
        return Envelope.from_document(docs[0])

    async def request(self, request_id: str) -> dict[str, Any]:
        _, headers = self.world.tokens.headers("compliance", purpose="legal_compliance")
        response = await self.client.get(f"/privacy-requests/{request_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_status(self, request_id: str, *statuses: str) -> Any:
        return await eventually(
            lambda: self.request(request_id), until=lambda r: r["status"] in statuses, timeout=20
        )


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens.generate()


@pytest.fixture(scope="module")
def settings(infra: Any) -> RetentionSettings:
    return service_settings(
        RetentionSettings,
        infra,
        services=SERVICES,
        scheduler_interval_seconds=3600,
        acknowledgement_timeout_seconds=60,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(settings: RetentionSettings, tokens: Tokens) -> AsyncIterator[Api]:
    world = World(
        settings,
        tokens,
        InMemoryServiceDirectory(SERVICES, purposes=PURPOSES),
        InMemoryAuditLogHeads(),
        InMemoryPasswordCheck(),
    )
    retention = bootstrap(
        settings,
        directory=world.directory,
        heads=world.heads,
        answers=world.answers,
        password_check=world.passwords,
    )
    app = build_app(settings, key_set=tokens.key_set(), retention=retention)
    world.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await world.producer.start()
    try:
        async with running_app(app) as (_, client):
            yield Api(app, client, retention, world)
    finally:
        await world.producer.stop()


def subject_headers(api: Api, role: str = "creator") -> tuple[str, dict[str, str]]:
    return api.world.tokens.headers(role, str(uuid.uuid4()))

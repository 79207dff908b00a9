"""Composition root of the consent service: settings in, wired stores, services and lifespan out.

`bootstrap(settings)` builds everything without doing I/O; `Consent.lifespan()` starts and
stops the moving parts in order — topics, indexes, the catch-up read-model projector, the
outbox relay (publishes `consent.events`) with its republish listener (gap repair asked by the
audit projector), the Kafka consumer (retention commands; identity events feeding the token
denylist) and the audit component — and `Consent.readiness_checks()` lists what `/readyz`
probes.
Tests call `bootstrap` with their own settings (per-test database, topic prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.consent.adapters.mapper import ConsentEventMapper
from mmgen.consent.adapters.metrics import TrackingMetrics
from mmgen.consent.adapters.projector import ReadModelProjector
from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    PolicyReadModel,
    TrackingReadModel,
)
from mmgen.consent.domain.events import registry
from mmgen.consent.service_layer.consents import ConsentService
from mmgen.consent.service_layer.erasure import ErasureService
from mmgen.consent.settings import ConsentSettings
from mmgen.events.consumer import EventConsumer, HandlerContext
from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import Envelope
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.repository import EventSourcedRepository
from mmgen.events.republish import RepublishListener, republish_topic
from mmgen.events.revocation import REVOKING_EVENT_TYPES, SubjectRevocations
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.platform import ReadinessCheck, kafka_check, mongo_check
from mmgen.platform.settings import key_bytes

log = logging.getLogger(__name__)

PRODUCER = "consent"


@dataclass
class Consent:
    """Everything the app and the consumers use, built from one settings object."""

    settings: ConsentSettings
    client: AsyncMongoClient[Any]
    db: AsyncDatabase[Any]
    metrics_registry: CollectorRegistry
    keystore: MongoKeystore
    store: MongoEventStore
    repo: EventSourcedRepository
    consents: ConsentReadModel
    policies: PolicyReadModel
    tracking: TrackingReadModel
    service: ConsentService
    erasure: ErasureService
    relay: Relay
    broker: KafkaBroker
    consumer: EventConsumer[Envelope]
    topics: Topics
    republish: RepublishListener
    revocations: SubjectRevocations
    projector: ReadModelProjector
    audit: Any = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def events_topic(self) -> str:
        return self.topics.events(PRODUCER)

    def readiness_checks(self) -> list[ReadinessCheck]:
        checks = [mongo_check(self.client), kafka_check(self.settings.kafka_bootstrap)]
        if self.audit is not None:
            checks.extend(self.audit.readiness_checks)
        return checks

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()
        await self.keystore.ensure_indexes()
        await self.consents.ensure_indexes()
        await self.policies.ensure_indexes()
        await self.tracking.ensure_indexes()

    async def ensure_topics(self) -> None:
        """Create our topics and those we consume, with the fixed partition count."""
        names = [
            self.events_topic,
            dlq_topic(self.events_topic),
            self.topics.retention_commands,
            dlq_topic(self.topics.retention_commands),
            republish_topic(self.settings.topic_prefix),
            self.topics.events("identity"),
            dlq_topic(self.topics.events("identity")),
        ]
        await ensure_topics(
            self.settings.kafka_bootstrap, names, partitions=self.settings.topic_partitions
        )

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Start topics, indexes, relay, consumers and audit; stop them in reverse order."""
        await self.ensure_topics()
        await self.ensure_indexes()
        relay_task = asyncio.create_task(self.relay.run(), name="consent-relay")
        projector_task = asyncio.create_task(self.projector.run(), name="consent-projector")
        try:
            # Both join a consumer group (about a second each on the local broker): in parallel.
            await asyncio.gather(self.republish.start(), self.broker.start())
            try:
                if self.audit is not None:
                    await self.audit.start()
                try:
                    yield
                finally:
                    if self.audit is not None:
                        await self.audit.stop()
            finally:
                await self.broker.stop()
                await self.republish.stop()
        finally:
            await self.projector.stop()
            await self.relay.stop()
            for task in (projector_task, relay_task):
                try:
                    await asyncio.wait_for(task, timeout=10)
                except TimeoutError:
                    task.cancel()
            await self.relay.close()
            await self.client.close()


def master_keyring(settings: ConsentSettings) -> MasterKeyring:
    """The master key wrapping per-subject data keys, from settings (never from the repo)."""
    return MasterKeyring(MasterKey(settings.master_key_id, key_bytes(settings.master_key)))


def bootstrap(
    settings: ConsentSettings,
    *,
    metrics_registry: CollectorRegistry | None = None,
    with_audit: bool = True,
) -> Consent:
    """Wire the service (no I/O yet: the lifespan connects and starts things)."""
    registry_ = metrics_registry or CollectorRegistry(auto_describe=True)
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    db = client[settings.mongo_database]
    keystore = MongoKeystore(db, master_keyring(settings))
    store = MongoEventStore(db, PRODUCER)
    mapper = ConsentEventMapper(registry, PersonalDataCipher(keystore), PRODUCER)
    repo = EventSourcedRepository(store, mapper)
    consents = ConsentReadModel(db)
    policies = PolicyReadModel(db)
    tracking = TrackingReadModel(db)
    service = ConsentService(
        repo,
        keystore,
        consents,
        policies,
        tracking,
        TrackingMetrics(registry_),
        max_tracking_events_per_subject=settings.tracking_max_events_per_subject,
    )
    erasure = ErasureService(repo, keystore, consents, tracking)
    topics = Topics(settings.topic_prefix)
    relay = Relay(
        store,
        db,
        settings.kafka_bootstrap,
        topics.events(PRODUCER),
        settings=RelaySettings(lease_ttl_s=settings.relay_lease_ttl_seconds),
        change_stream=db[store.events.name],
        registry=registry_,
    )
    broker = KafkaBroker(settings.kafka_bootstrap, client_id="consent")
    consumer: EventConsumer[Envelope] = EventConsumer(broker, db, registry=registry_)

    # Tokens of closed or erased accounts stop working here as soon as identity says so.
    revocations = SubjectRevocations(db)

    async def on_message(envelope: Envelope, ctx: HandlerContext) -> None:
        """One consumer (one group join) for both inputs: identity's account endings feed the
        token denylist (written in the consumer's transaction); retention's commands erase or
        anonymise, each step idempotent by itself."""
        if envelope.event_type in REVOKING_EVENT_TYPES:
            await revocations.handle(envelope, ctx)
        elif envelope.producer == "retention":
            await erasure.handle_command(envelope)

    consumer.subscribe(
        topics.retention_commands,
        topics.events("identity"),
        handler=on_message,
        group_id=settings.consumer_group,
        name="consent-inbox",
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
    )
    republish = RepublishListener(
        relay,
        settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
    )
    consent = Consent(
        settings=settings,
        client=client,
        db=db,
        metrics_registry=registry_,
        keystore=keystore,
        store=store,
        repo=repo,
        consents=consents,
        policies=policies,
        tracking=tracking,
        service=service,
        erasure=erasure,
        relay=relay,
        broker=broker,
        consumer=consumer,
        topics=topics,
        republish=republish,
        revocations=revocations,
        projector=ReadModelProjector(
            store,
            db,
            keystore,
            consents,
            policies,
            tracking,
            max_tracking_events_per_subject=settings.tracking_max_events_per_subject,
        ),
    )
    if with_audit:
        consent.audit = _build_audit(settings, db, registry_)
    return consent


def _build_audit(settings: ConsentSettings, db: AsyncDatabase[Any], registry_: Any) -> Any:
    """The audit component (mmgen.consent.audit), when its package is present."""
    try:
        from mmgen.consent.audit import build_audit
    except ImportError:
        log.warning("audit component not available; the audit log is not running")
        return None
    return build_audit(settings, db, registry=registry_)

"""Composition of the audit log: `build_audit(settings, db)` → router, start/stop, readiness.

The consent service's bootstrap calls it once; tests call it with their own settings (topic
prefix, short timeouts). Nothing connects until `start()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.consent.audit.api import AppendSignal, AuditDenialRecorder, build_router
from mmgen.consent.audit.checkpoints import Checkpointer, load_signer
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.projector import AuditProjector
from mmgen.consent.audit.publisher import AuditLogPublisher
from mmgen.consent.audit.service import AuditQueries
from mmgen.consent.audit.store import AppendResult, MongoAuditStore
from mmgen.consent.audit.witnessing import Witnessing, parse_witnesses
from mmgen.events.relay import MAX_REQUEST_SIZE, PRODUCER_RECOVERY_CONFIG
from mmgen.events.republish import republish_topic
from mmgen.events.topics import Topics, ensure_topics
from mmgen.platform import ReadinessCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditConfig:
    """The audit component's settings (read from the service's settings by `from_settings`)."""

    kafka_bootstrap: str
    topic_prefix: str = ""
    signing_key: str = "dev-insecure-consent-audit-signing-key"
    origin: str = "mmgen.local/audit"
    checkpoint_every_entries: int = 1000
    checkpoint_every_seconds: float = 10.0
    gap_repair_delay_seconds: float = 5.0
    batch_max: int = 1000
    consumer_group: str = "consent-audit"
    topic_partitions: int = 4
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    metadata_max_age_ms: int = 3_000
    witnesses: str = ""
    witness_timeout_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> AuditConfig:
        """From a `ConsentSettings` (fields `audit_*`; missing ones keep their defaults)."""
        values: dict[str, Any] = {"kafka_bootstrap": settings.kafka_bootstrap}
        secret = getattr(settings, "audit_signing_key", None)
        if secret is not None:
            values["signing_key"] = (
                secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
            )
        for name, attr in (
            ("topic_prefix", "topic_prefix"),
            ("origin", "audit_origin"),
            ("checkpoint_every_entries", "audit_checkpoint_every_entries"),
            ("checkpoint_every_seconds", "audit_checkpoint_every_seconds"),
            ("gap_repair_delay_seconds", "audit_gap_repair_delay_seconds"),
            ("batch_max", "audit_batch_max"),
            ("consumer_group", "audit_consumer_group"),
            ("topic_partitions", "topic_partitions"),
            ("session_timeout_ms", "consumer_session_timeout_ms"),
            ("heartbeat_interval_ms", "consumer_heartbeat_interval_ms"),
            ("witnesses", "audit_witnesses"),
            ("witness_timeout_seconds", "audit_witness_timeout_seconds"),
        ):
            value = getattr(settings, attr, None)
            if value is not None:
                values[name] = value
        values.update(overrides)
        return cls(**values)


@dataclass
class AuditComponent:
    """The running audit log: HTTP router, projector, checkpoints, `audit.log` publisher."""

    config: AuditConfig
    store: MongoAuditStore
    signer: NoteSigner
    metrics: AuditMetrics
    queries: AuditQueries
    signal: AppendSignal
    router: APIRouter
    denial_recorder: AuditDenialRecorder
    topics: Topics
    checkpointer: Checkpointer
    projector: AuditProjector | None = None
    publisher: AuditLogPublisher | None = None
    _producer: AIOKafkaProducer | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def public_key(self) -> str:
        """C2SP verifier key string of the log (served at `/audit/public-key`)."""
        return self.signer.verifier().to_string()

    @property
    def audit_log_topic(self) -> str:
        return self.topics.audit_log

    @property
    def republish_topic(self) -> str:
        return republish_topic(self.config.topic_prefix)

    def on_append(self, result: AppendResult) -> None:
        """After every committed append: wake tails, the publisher and the checkpointer."""
        self.signal.notify()
        if self.publisher is not None:
            self.publisher.notify()
        self.checkpointer.notify(result.head.size)

    async def start(self) -> None:
        """Indexes, topics, then projector, checkpointer and publisher as background tasks."""
        await self.store.ensure_indexes()
        await ensure_topics(
            self.config.kafka_bootstrap,
            [self.audit_log_topic, self.republish_topic],
            partitions=self.config.topic_partitions,
            check_partitions=False,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.kafka_bootstrap,
            acks="all",
            enable_idempotence=False,
            max_request_size=MAX_REQUEST_SIZE,
            linger_ms=5,
            client_id="consent-audit",
            **PRODUCER_RECOVERY_CONFIG,
        )
        await producer.start()
        self._producer = producer
        self.publisher = AuditLogPublisher(
            self.store, producer, self.audit_log_topic, metrics=self.metrics
        )
        self.projector = AuditProjector(
            self.store,
            self.config.kafka_bootstrap,
            pattern=self.topics.events_pattern(),
            group_id=self.config.consumer_group,
            producer=producer,
            republish_topic=self.republish_topic,
            metrics=self.metrics,
            batch_max=self.config.batch_max,
            gap_repair_delay_s=self.config.gap_repair_delay_seconds,
            metadata_max_age_ms=self.config.metadata_max_age_ms,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            on_append=self.on_append,
        )
        self.metrics.tree_size.set((await self.store.head()).size)
        await self.projector.start()
        self._tasks = [
            asyncio.create_task(self.checkpointer.run(), name="audit-checkpoints"),
            asyncio.create_task(self.publisher.run(), name="audit-log-publisher"),
        ]

    async def stop(self) -> None:
        if self.projector is not None:
            await self.projector.stop()
        await self.checkpointer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def status(self) -> dict[str, Any]:
        """Projector state and every producer's continuity (open gaps, repair requests)."""
        producers = []
        for doc in await self.store.producer_states():
            producers.append(
                {
                    "producer": doc["_id"],
                    "contiguous": doc.get("contiguous", 0),
                    "highest": doc.get("highest", 0),
                    "missing": doc.get("missing", 0),
                    "gap_since": doc.get("gap_since"),
                    "repair_requests": doc.get("repair_requests", 0),
                    "repairs": doc.get("repairs", 0),
                }
            )
        head = await self.store.head()
        return {
            "tree_size": head.size,
            "projector_running": bool(self.projector and self.projector.running),
            "projector_error": self.projector.last_error if self.projector else None,
            "published_next_seq": self.publisher.next_seq if self.publisher else None,
            "producers": producers,
        }

    @property
    def readiness_checks(self) -> list[ReadinessCheck]:
        async def projector_ok() -> bool | str:
            if self.projector is None or not self.projector.running:
                return False
            status = await self.status()
            gaps = [
                f"{p['producer']}: {p['missing']} missing after {p['contiguous']}"
                f" ({p['repair_requests']} repair requests)"
                for p in status["producers"]
                if p["missing"]
            ]
            return "; ".join(gaps) if gaps else "no open gaps"

        return [ReadinessCheck("audit-projector", projector_ok)]


def build_audit(
    settings: Any,
    db: AsyncDatabase[Any],
    *,
    registry: CollectorRegistry | None = None,
    **overrides: Any,
) -> AuditComponent:
    """Wire the audit log over the consent database (no I/O until `start()`).

    `settings`: the service's settings (`kafka_bootstrap`, `topic_prefix`, `audit_*`);
    `overrides`: `AuditConfig` fields to replace (tests: short timeouts, small batches).
    """
    config = AuditConfig.from_settings(settings, **overrides)
    store = MongoAuditStore(db)
    signer = load_signer(config.signing_key, config.origin)
    metrics = AuditMetrics(registry)
    queries = AuditQueries(store, signer.verifier(), config.origin)
    signal = AppendSignal()
    witnesses = parse_witnesses(config.witnesses)
    checkpointer = Checkpointer(
        store,
        signer,
        origin=config.origin,
        every_entries=config.checkpoint_every_entries,
        every_seconds=config.checkpoint_every_seconds,
        metrics=metrics,
        witnessing=(
            Witnessing(store, witnesses, timeout_seconds=config.witness_timeout_seconds)
            if witnesses
            else None
        ),
    )
    public_key = signer.verifier().to_string()
    router = build_router(queries, signal, lambda: public_key, store)
    component = AuditComponent(
        config=config,
        store=store,
        signer=signer,
        metrics=metrics,
        queries=queries,
        signal=signal,
        router=router,
        denial_recorder=AuditDenialRecorder(store, lambda r: None),
        topics=Topics(config.topic_prefix),
        checkpointer=checkpointer,
    )
    component.denial_recorder.on_append = component.on_append
    return component


__all__ = ["AuditComponent", "AuditConfig", "build_audit"]

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
from mmgen.consent.audit.heads import HeadWatcher
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.projector import AuditProjector, producer_holes
from mmgen.consent.audit.publisher import AuditLogPublisher
from mmgen.consent.audit.republisher import AuditLogRepublisher
from mmgen.consent.audit.service import AuditQueries
from mmgen.consent.audit.store import AppendResult, MongoAuditStore
from mmgen.consent.audit.streaming import StreamSlots
from mmgen.consent.audit.witnessing import Witnessing, parse_witnesses
from mmgen.events.heads import heads_topic
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity
from mmgen.events.relay import (
    MAX_REQUEST_SIZE,
    PRODUCER_RECOVERY_CONFIG,
    LeaseStore,
    default_owner,
)
from mmgen.events.republish import RepublishListener, republish_topic
from mmgen.events.topics import Topics, ensure_topics
from mmgen.platform import ReadinessCheck
from mmgen.platform.auth.denylist import SubjectDenylist
from mmgen.runtime.trail import AuditTrail

log = logging.getLogger(__name__)

#: The lease (in the relays' lease collection) held by the replica that writes the log.
AUDIT_LEASE = "audit-log"


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
    fetch_max_wait_ms: int = 500
    metadata_max_age_ms: int = 3_000
    lease_ttl_seconds: float = 10.0
    witnesses: str = ""
    witness_timeout_seconds: float = 5.0
    verify_max_entries: int = 100_000
    streams_per_principal: int = 2
    stream_recheck_seconds: float = 5.0
    #: How its Kafka clients connect (the service's `kafka_security()`).
    kafka_security: KafkaSecurity = PLAINTEXT

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> AuditConfig:
        """From a `ConsentSettings` (fields `audit_*`; missing ones keep their defaults)."""
        values: dict[str, Any] = {"kafka_bootstrap": settings.kafka_bootstrap}
        if hasattr(settings, "kafka_security"):
            values["kafka_security"] = settings.kafka_security()
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
            ("fetch_max_wait_ms", "consumer_fetch_max_wait_ms"),
            ("lease_ttl_seconds", "audit_lease_ttl_seconds"),
            ("witnesses", "audit_witnesses"),
            ("witness_timeout_seconds", "audit_witness_timeout_seconds"),
            ("verify_max_entries", "audit_verify_max_entries"),
            ("streams_per_principal", "audit_streams_per_principal"),
            ("stream_recheck_seconds", "audit_stream_recheck_seconds"),
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
    stream_slots: StreamSlots
    projector: AuditProjector | None = None
    heads: HeadWatcher | None = None
    publisher: AuditLogPublisher | None = None
    #: Serves readers' requests to publish `audit.log` entries again (`republisher`).
    republish_listener: RepublishListener | None = None
    _producer: AIOKafkaProducer | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    leases: LeaseStore | None = None
    owner: str = field(default_factory=default_owner)
    leading: bool = False
    _epoch: int = 0
    _lead_task: asyncio.Task[None] | None = None
    _lease_task: asyncio.Task[None] | None = None

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

    @property
    def republish_group(self) -> str:
        """The group in which the log's writer reads `audit.republish` (the runtime's listener,
        `republish-consent`, serves consent's own events)."""
        return f"{self.config.consumer_group}-republish"

    def on_append(self, result: AppendResult) -> None:
        """After every committed append: wake tails, the publisher and the checkpointer."""
        self.signal.notify()
        if self.publisher is not None:
            self.publisher.notify()
        self.checkpointer.notify(result.head.size)

    async def start(self) -> None:
        """Indexes, then lead or stand by: one replica at a time writes the log.

        Every replica serves the log's routes from the store; only the holder of the lease
        (an epoch-fenced document, as the relay's) runs the projector, the gap watcher, the
        head watcher, the checkpointer, the `audit.log` publisher and the listener that
        publishes entries again for readers that lost them. A standby takes over
        within `lease_ttl_seconds` (plus a quarter of it) of the leader's last renewal.
        """
        await self.store.ensure_indexes()
        assert self.leases is not None
        got = await self.leases.acquire(self.owner, self.config.lease_ttl_seconds)
        self._epoch = got[0] if got is not None else 0
        # The lease is kept by a task of its own, so starting or stopping the writers (group
        # joins take seconds) never delays a renewal.
        self._lease_task = asyncio.create_task(self._keep_lease(), name="audit-lease")
        if self._epoch:  # lead at once: a single replica starts writing before serving
            await self._start_writers()
            self.leading = True
        self._lead_task = asyncio.create_task(self._follow_lease(), name="audit-lead")

    async def _keep_lease(self) -> None:
        """Renew the lease every third of its length while held; otherwise try to take it."""
        assert self.leases is not None
        ttl = self.config.lease_ttl_seconds
        while True:
            await asyncio.sleep(ttl / 3 if self._epoch else ttl / 4)
            try:
                if self._epoch and not await self.leases.renew(self.owner, self._epoch, ttl):
                    log.warning("audit log: %s lost the lease; standing by", self.owner)
                    self._epoch = 0
                elif not self._epoch:
                    got = await self.leases.acquire(self.owner, ttl)
                    if got is not None:
                        self._epoch = got[0]
                        log.info("audit log: %s leads (epoch %d)", self.owner, self._epoch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: the lease lapses, the writers stop
                log.exception("audit log: lease renewal failed")
                self._epoch = 0

    async def _follow_lease(self) -> None:
        """Run the writers exactly while the lease is held."""
        while True:
            try:
                if self._epoch and not self.leading:
                    await self._start_writers()
                    self.leading = True
                elif not self._epoch and self.leading:
                    self.leading = False
                    await self._stop_writers()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker is away: try again on the next look
                log.exception("audit log: starting the writers failed")
                self.leading = False
                with contextlib.suppress(Exception):
                    await self._stop_writers()
            await asyncio.sleep(0.2)

    async def _start_writers(self) -> None:
        """Topics, then projector, head watcher, republish listener, checkpointer, publisher."""
        await ensure_topics(
            self.config.kafka_bootstrap,
            [self.audit_log_topic, self.republish_topic, heads_topic(self.config.topic_prefix)],
            partitions=self.config.topic_partitions,
            check_partitions=False,
            security=self.config.kafka_security,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.kafka_bootstrap,
            acks="all",
            enable_idempotence=False,
            max_request_size=MAX_REQUEST_SIZE,
            linger_ms=5,
            client_id="consent-audit",
            **PRODUCER_RECOVERY_CONFIG,
            **self.config.kafka_security.client_config(),
        )
        await producer.start()
        self._producer = producer
        self.publisher = AuditLogPublisher(
            self.store, producer, self.audit_log_topic, metrics=self.metrics
        )
        skipped = await self.publisher.skip_published(
            self.config.kafka_bootstrap, security=self.config.kafka_security
        )
        if skipped:
            log.info("audit log: %d entries after the cursor were on audit.log already", skipped)
        self.projector = AuditProjector(
            self.store,
            self.config.kafka_bootstrap,
            pattern=self.topics.events_pattern(),
            producer_of=self.topics.events_producer,
            group_id=self.config.consumer_group,
            producer=producer,
            republish_topic=self.republish_topic,
            metrics=self.metrics,
            batch_max=self.config.batch_max,
            gap_repair_delay_s=self.config.gap_repair_delay_seconds,
            metadata_max_age_ms=self.config.metadata_max_age_ms,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            on_append=self.on_append,
            security=self.config.kafka_security,
        )
        self.metrics.tree_size.set((await self.store.head()).size)
        await self.projector.start()
        self.heads = HeadWatcher(
            self.store,
            self.config.kafka_bootstrap,
            heads_topic(self.config.topic_prefix),
            group_id=f"{self.config.consumer_group}-heads",
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            metadata_max_age_ms=self.config.metadata_max_age_ms,
            security=self.config.kafka_security,
        )
        await self.heads.start()
        self.republish_listener = RepublishListener(
            AuditLogRepublisher(self.store, producer, self.audit_log_topic, metrics=self.metrics),
            self.config.kafka_bootstrap,
            topic_prefix=self.config.topic_prefix,
            group_id=self.republish_group,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            security=self.config.kafka_security,
        )
        await self.republish_listener.start()
        self._tasks = [
            asyncio.create_task(self.checkpointer.run(), name="audit-checkpoints"),
            asyncio.create_task(self.publisher.run(), name="audit-log-publisher"),
        ]

    async def stop(self) -> None:
        for task in (self._lead_task, self._lease_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._lead_task = self._lease_task = None
        if self.leading:
            self.leading = False
            await self._stop_writers()
        if self._epoch and self.leases is not None:
            epoch, self._epoch = self._epoch, 0
            with contextlib.suppress(Exception):
                await self.leases.release(self.owner, epoch)

    async def _stop_writers(self) -> None:
        if self.heads is not None:
            await self.heads.stop()
        listener, self.republish_listener = self.republish_listener, None
        if listener is not None:
            await listener.stop()
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
                    "announced": doc.get("announced", 0),
                    "missing": sum(last - first + 1 for first, last in producer_holes(doc)),
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
            if not self.leading:
                state = await self.leases.state() if self.leases else None
                return f"standby (leader: {state.get('owner') if state else 'none yet'})"
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
    denylist: SubjectDenylist | None = None,
    trail: AuditTrail | None = None,
    **overrides: Any,
) -> AuditComponent:
    """Wire the audit log over the consent database (no I/O until `start()`).

    `settings`: the service's settings (`kafka_bootstrap`, `topic_prefix`, `audit_*`);
    `denylist`: the runtime's token revocations (open streams of a revoked account end);
    `trail`: the runtime's audit trail, recording every compliance read of the log;
    `overrides`: `AuditConfig` fields to replace (tests: short timeouts, small batches).
    """
    config = AuditConfig.from_settings(settings, **overrides)
    store = MongoAuditStore(db)
    signer = load_signer(config.signing_key, config.origin)
    metrics = AuditMetrics(registry)
    queries = AuditQueries(
        store, signer.verifier(), config.origin, verify_max_entries=config.verify_max_entries
    )
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
    stream_slots = StreamSlots(config.streams_per_principal)
    router = build_router(
        queries,
        signal,
        lambda: public_key,
        store,
        slots=stream_slots,
        denylist=denylist,
        recheck_seconds=config.stream_recheck_seconds,
        trail=trail,
    )
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
        stream_slots=stream_slots,
        leases=LeaseStore(db, AUDIT_LEASE),
    )
    component.denial_recorder.on_append = component.on_append
    return component


__all__ = ["AuditComponent", "AuditConfig", "build_audit"]

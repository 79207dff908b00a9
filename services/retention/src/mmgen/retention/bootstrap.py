"""Composition root of the retention service: settings in, the wired service out (no I/O).

`bootstrap(settings)` builds the use cases on a `ServiceRuntime` and registers on it what is
retention's own:
- its commands: `retention.EraseSubject` / `AnonymizeResource` are events of its store, copied
  by the relay to `retention.commands` (`runtime.commands`);
- its erasure participant (retention obeys its own commands like every service);
- inbox handlers for every expected service's `SubjectErased` and `ResourceAnonymized`;
- the `audit.log` reader (activity projection, `audit_seq` of acknowledgements), the follow-ups
  of acknowledged erasures and the scheduler, as components; indexes and the default
  policies at start-up; refusal of tokens of accounts identity closed or erased.

Tests pass fakes: any read model or the other services (`directory`, `heads`,
`password_check`); with an in-memory `kernel` everything is in memory and nothing connects.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from mmgen.auditlog.receipt import Ed25519Jwk, ReceiptSigner, b64url_encode
from mmgen.auditlog.receipt import b64url_decode as jwk_x_bytes
from mmgen.events.consumer import HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.kernel import EventKernel
from mmgen.events.republish import republish_topic
from mmgen.platform.errors import ConfigurationError
from mmgen.platform.http import service_client
from mmgen.platform.service_tokens import development_client_secret
from mmgen.retention.adapters.audit_log import AuditLogReader, MongoAuditInbox
from mmgen.retention.adapters.commands import StoreCommandPublisher
from mmgen.retention.adapters.directory import (
    DeferredServiceTokens,
    HttpAuditLogAnswers,
    HttpAuditLogHeads,
    HttpServiceDirectory,
)
from mmgen.retention.adapters.memory import (
    InMemoryActivityStore,
    InMemoryEvidenceStore,
    InMemoryHoldViews,
    InMemoryOrderLog,
    InMemoryPackageStore,
    InMemoryPolicyStore,
    InMemoryRequestViews,
)
from mmgen.retention.adapters.metrics import RetentionMetrics
from mmgen.retention.adapters.mongo import (
    MongoActivityStore,
    MongoEvidenceStore,
    MongoHoldViews,
    MongoOrderLog,
    MongoPackageStore,
    MongoPolicyStore,
    MongoRequestViews,
    ensure_indexes,
)
from mmgen.retention.adapters.reauth import IdentitySignIn
from mmgen.retention.domain.events import COMMAND_TYPES, retention_registry
from mmgen.retention.service_layer.access import AccessPackages
from mmgen.retention.service_layer.audit_feed import AuditFeed
from mmgen.retention.service_layer.background import FollowUps, SchedulerLoop
from mmgen.retention.service_layer.directory import SelfAnsweringDirectory
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.holds import LegalHolds
from mmgen.retention.service_layer.participant import RetentionErasure
from mmgen.retention.service_layer.policies import RetentionPolicies, RetentionRuns
from mmgen.retention.service_layer.ports import (
    ActivityStore,
    AuditLogAnswers,
    AuditLogHeads,
    Clock,
    EvidenceStore,
    HoldViews,
    OrderLog,
    PackageStore,
    PasswordCheck,
    PolicyStore,
    RequestViews,
    ServiceDirectory,
    SystemClock,
)
from mmgen.retention.service_layer.receipts import Receipts
from mmgen.retention.service_layer.requests import PrivacyRequests, RequestBook
from mmgen.retention.service_layer.scheduler import Scheduler
from mmgen.retention.settings import RetentionSettings
from mmgen.runtime.commands import pinned_command_keys
from mmgen.runtime.contract import RESOURCE_ANONYMIZED, SUBJECT_ERASED
from mmgen.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass
class Retention:
    """The wired service: its runtime, read models, use cases and background parts."""

    settings: RetentionSettings
    runtime: ServiceRuntime
    views: RequestViews
    hold_views: HoldViews
    activity: ActivityStore
    directory: ServiceDirectory
    password_check: PasswordCheck
    book: RequestBook
    requests: PrivacyRequests
    coordinator: ErasureCoordinator
    access: AccessPackages
    holds: LegalHolds
    policies: RetentionPolicies
    runs: RetentionRuns
    receipts: Receipts
    feed: AuditFeed
    participant: RetentionErasure
    scheduler: SchedulerLoop
    follow_ups: FollowUps
    clock: Clock
    #: The `audit.log` reader; None over an in-memory kernel (no broker).
    audit_reader: AuditLogReader | None


class HttpClients:
    """The HTTP client retention calls the other services with (closed at shutdown)."""

    def __init__(self, timeout_s: float) -> None:
        self.client = service_client(timeout_s)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()


def service_credentials(settings: RetentionSettings) -> tuple[str, str]:
    """`(identity_url, client secret)`: from settings, else identity's development file."""
    assert settings.identity_url is not None
    if settings.identity_client_secret is not None:
        return settings.identity_url, settings.identity_client_secret.get_secret_value()
    if settings.state_dir is None:
        raise ConfigurationError("set RETENTION_IDENTITY_CLIENT_SECRET (no state folder)")
    _, secret = development_client_secret(Path(settings.state_dir), settings.service_name)
    return settings.identity_url, secret


def _acknowledgements(runtime: ServiceRuntime, feed: AuditFeed, services: tuple[str, ...]) -> None:
    """Inbox handlers of every expected service's answers to retention's commands."""
    answers = Counter(
        "retention_answers",
        "Answers to retention's commands read from the services' topics",
        ["service", "kind"],
        namespace="mmgen",
        registry=runtime.metrics_registry,
    )

    async def subject_erased(envelope: Envelope, ctx: HandlerContext) -> None:
        answers.labels(envelope.producer, SUBJECT_ERASED).inc()
        await feed.on_subject_erased(envelope)

    async def resource_anonymized(envelope: Envelope, ctx: HandlerContext) -> None:
        # Anonymisations answer policy runs, not requests: counted and logged; the activity
        # projection records them from the audit log (`anonymized_at` of the resource).
        answers.labels(envelope.producer, RESOURCE_ANONYMIZED).inc()
        log.info(
            "resource anonymised",
            extra={"service": envelope.producer, "command": envelope.causation_id},
        )

    for service in services:
        runtime.on(f"{service}.{SUBJECT_ERASED}", subject_erased)
        runtime.on(f"{service}.{RESOURCE_ANONYMIZED}", resource_anonymized)


def bootstrap(
    settings: RetentionSettings,
    *,
    kernel: EventKernel | None = None,
    views: RequestViews | None = None,
    hold_views: HoldViews | None = None,
    policy_store: PolicyStore | None = None,
    activity: ActivityStore | None = None,
    orders: OrderLog | None = None,
    packages: PackageStore | None = None,
    evidence: EvidenceStore | None = None,
    directory: ServiceDirectory | None = None,
    heads: AuditLogHeads | None = None,
    answers: AuditLogAnswers | None = None,
    password_check: PasswordCheck | None = None,
    clock: Clock | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> Retention:
    """Wire the service without I/O; the runtime's lifespan connects and starts things.

    `kernel`: an in-memory kernel over `retention_registry()` (unit tests); read models not
    given are Mongo adapters on the service's database, or in-memory fakes without one.
    """
    registry = retention_registry() if kernel is None else kernel.mapper.registry
    runtime = ServiceRuntime(settings, registry, kernel=kernel, metrics_registry=metrics_registry)
    runtime.commands(COMMAND_TYPES)
    db = runtime.db
    clock = clock or SystemClock()
    if db is None:
        views = views or InMemoryRequestViews()
        hold_views = hold_views or InMemoryHoldViews()
        policy_store = policy_store or InMemoryPolicyStore()
        activity = activity or InMemoryActivityStore()
        orders = orders or InMemoryOrderLog()
        packages = packages or InMemoryPackageStore()
        evidence = evidence or InMemoryEvidenceStore()
    else:
        views = views or MongoRequestViews(db)
        hold_views = hold_views or MongoHoldViews(db)
        policy_store = policy_store or MongoPolicyStore(db)
        activity = activity or MongoActivityStore(db)
        orders = orders or MongoOrderLog(db)
        packages = packages or MongoPackageStore(db)
        evidence = evidence or MongoEvidenceStore(db)

        async def indexes() -> None:
            await ensure_indexes(db)

        runtime.on_prepare(indexes)

    http = HttpClients(settings.internal_call_timeout_seconds)
    runtime.component(http)
    # The token goes to every participant's `/internal/` routes (and identity's): it names them.
    audiences = list(dict.fromkeys((*settings.services, "identity")))
    tokens = DeferredServiceTokens(
        lambda: service_credentials(settings), http.client, audiences=audiences
    )
    assert settings.identity_url is not None and settings.audit_url is not None
    remote = directory or HttpServiceDirectory(
        urls=settings.service_urls,
        services=settings.services,
        tokens=tokens,
        client=http.client,
        max_bytes=settings.max_export_bytes,
    )
    heads = heads or HttpAuditLogHeads(url=settings.audit_url, tokens=tokens, client=http.client)
    answers = answers or HttpAuditLogAnswers(
        url=settings.audit_url, tokens=tokens, client=http.client
    )
    password_check = password_check or IdentitySignIn(settings.identity_url, http.client)

    kernel = runtime.kernel
    repository = kernel.repository
    book = RequestBook(repository, views)
    participant = RetentionErasure(
        repository=repository,
        keystore=kernel.keystore,
        views=views,
        packages=packages,
        holds=hold_views,
        clock=clock,
    )
    signer = ReceiptSigner(settings.receipt_seed())
    # Retention obeys its own commands too, checked like everyone's: against its own keys.
    own_keys = (b64url_encode(signer.jwk.public_key), *settings.receipt_retired_public_keys)
    runtime.erasure(
        participant,
        command_keys=pinned_command_keys((*own_keys, *settings.retention_command_keys)),
    )
    directory = SelfAnsweringDirectory(
        remote, name=settings.service_name, participant=participant, trail=runtime.trail
    )
    publisher = StoreCommandPublisher(repository, signer)
    coordinator = ErasureCoordinator(
        book=book,
        views=views,
        holds=hold_views,
        evidence=evidence,
        publisher=publisher,
        directory=directory,
        clock=clock,
        ack_timeout=settings.acknowledgement_timeout,
        max_attempts=settings.max_erasure_attempts,
        answers=answers,
    )
    follow_ups = FollowUps(coordinator)
    coordinator.advance_later = follow_ups.submit
    access = AccessPackages(
        book=book,
        views=views,
        directory=directory,
        policies=policy_store,
        holds=hold_views,
        activity=activity,
        packages=packages,
        cipher=kernel.mapper.cipher,
        clock=clock,
        ttl=settings.access_package_ttl,
    )
    requests = PrivacyRequests(
        book, views, clock, processors={"erasure": coordinator.start, "access": access.collect}
    )
    holds = LegalHolds(
        repository=repository, views=hold_views, coordinator=coordinator, clock=clock
    )
    policies = RetentionPolicies(repository=repository, store=policy_store, clock=clock)
    runtime.on_prepare(_seed(policies))
    runs = RetentionRuns(
        repository=repository,
        policies=policy_store,
        activity=activity,
        holds=hold_views,
        requests=views,
        orders=orders,
        publisher=publisher,
        clock=clock,
        max_orders=settings.max_orders_per_run,
        max_candidates=settings.max_candidates_per_policy,
    )
    receipts = Receipts(
        book=book,
        heads=heads,
        signer=signer,
        retired=[Ed25519Jwk.of(jwk_x_bytes(x)) for x in settings.receipt_retired_public_keys],
    )
    feed = AuditFeed(
        activity=activity,
        coordinator=coordinator,
        resource_types=frozenset(settings.activity_resource_types),
    )
    _acknowledgements(runtime, feed, settings.services)

    metrics = RetentionMetrics(runtime.metrics_registry)
    scheduler = SchedulerLoop(
        Scheduler(
            requests=requests, coordinator=coordinator, access=access, holds=holds, runs=runs
        ),
        settings.scheduler_interval_seconds,
        on_pass=lambda result: metrics.record(result.overdue_open, result.nearest_deadline_seconds),
    )
    runtime.component(follow_ups)

    reader: AuditLogReader | None = None
    if db is not None:
        runtime.revoke_tokens_from_identity()
        inbox = MongoAuditInbox(db)
        runtime.on_prepare(inbox.ensure_indexes)
        reader = AuditLogReader(
            db=db,
            inbox=inbox,
            apply=feed.on_entries,
            bootstrap=settings.kafka_bootstrap,
            topic=runtime.topics.audit_log,
            group_id=settings.audit_consumer_group,
            partitions=settings.topic_partitions,
            registry=runtime.metrics_registry,
            consumer_metrics=lambda: runtime.consumer.metrics if runtime.consumer else None,
            batch_size=settings.audit_batch_size,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            idle_wait_s=settings.projector_idle_wait_seconds,
            security=settings.kafka_security(),
            hole_repair_s=settings.audit_hole_repair_seconds,
            republish_to=republish_topic(settings.topic_prefix),
        )
        runtime.component(reader, reader.readiness_check)
    runtime.component(scheduler)
    return Retention(
        settings=settings,
        runtime=runtime,
        views=views,
        hold_views=hold_views,
        activity=activity,
        directory=directory,
        password_check=password_check,
        book=book,
        requests=requests,
        coordinator=coordinator,
        access=access,
        holds=holds,
        policies=policies,
        runs=runs,
        receipts=receipts,
        feed=feed,
        participant=participant,
        scheduler=scheduler,
        follow_ups=follow_ups,
        clock=clock,
        audit_reader=reader,
    )


def _seed(policies: RetentionPolicies) -> Callable[[], Awaitable[None]]:
    async def seed() -> None:
        seeded = await policies.ensure_defaults()
        if seeded:
            log.info("seeded %d default retention policies", seeded)

    return seed

"""Composition root of the consent service: settings in, the wired service out (no I/O).

`bootstrap(settings)` builds the service on its runtime (`mmgen.runtime`), which owns the
plumbing: the event kernel, topics, the outbox relay, the inbox consumer (retention's
commands; identity's account endings for the token denylist), the checkpointed read-model
projector, readiness and metrics. Consent registers what is its own: the read models' indexes,
the read-model projection, its erasure participant and the audit log component.

Unit tests pass fakes: `bootstrap(settings, kernel=in_memory_kernel(...))` runs over the
kernel's in-memory store and keystore and the `InMemory*` read models (no database, no broker,
so no token revocations and no audit log). Tests of one part pass that part's fake only.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from mmgen.consent.adapters.memory import (
    InMemoryConsentReadModel,
    InMemoryPolicyReadModel,
    InMemoryTrackingReadModel,
)
from mmgen.consent.adapters.metrics import TrackingMetrics
from mmgen.consent.adapters.mongo import (
    MongoConsentReadModel,
    MongoPolicyReadModel,
    MongoTrackingReadModel,
)
from mmgen.consent.adapters.projection import PROJECTION_NAME, ReadModelProjection
from mmgen.consent.adapters.read_models import (
    ConsentReadModel,
    PolicyReadModel,
    TrackingReadModel,
)
from mmgen.consent.audit import AuditComponent, build_audit
from mmgen.consent.domain.events import consent_registry
from mmgen.consent.domain.history import STANDARD_EVENT_VERSIONS, register_history
from mmgen.consent.service_layer.consents import ConsentService
from mmgen.consent.service_layer.erasure import ConsentErasure
from mmgen.consent.settings import ConsentSettings
from mmgen.events.kernel import EventKernel
from mmgen.runtime.service import ServiceRuntime


@dataclass
class Consent:
    """The wired service: its runtime, read models, use cases and audit log."""

    settings: ConsentSettings
    runtime: ServiceRuntime
    consents: ConsentReadModel
    policies: PolicyReadModel
    tracking: TrackingReadModel
    projection: ReadModelProjection
    service: ConsentService
    erasure: ConsentErasure
    #: The audit log; None over an in-memory kernel (it lives in the service's database).
    audit: AuditComponent | None


def bootstrap(
    settings: ConsentSettings,
    *,
    kernel: EventKernel | None = None,
    consents: ConsentReadModel | None = None,
    policies: PolicyReadModel | None = None,
    tracking: TrackingReadModel | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> Consent:
    """Wire the service without I/O; the runtime's lifespan connects and starts things.

    `kernel`: an in-memory kernel over `consent_registry()` (unit tests); read models not
    given are Mongo adapters on the service's database, or in-memory fakes without one.
    """
    registry = kernel.mapper.registry if kernel is not None else consent_registry()
    register_history(registry)  # the runtime checks the chains once its standard events are in
    runtime = ServiceRuntime(
        settings,
        registry,
        kernel=kernel,
        metrics_registry=metrics_registry,
        standard_event_versions=STANDARD_EVENT_VERSIONS,
    )
    db = runtime.db
    if db is None:
        consents = consents or InMemoryConsentReadModel()
        policies = policies or InMemoryPolicyReadModel()
        tracking = tracking or InMemoryTrackingReadModel()
    else:
        if consents is None:
            consents = MongoConsentReadModel(db)
            runtime.on_prepare(consents.ensure_indexes)
        if policies is None:
            policies = MongoPolicyReadModel(db)
            runtime.on_prepare(policies.ensure_indexes)
        if tracking is None:
            tracking = MongoTrackingReadModel(db)
            runtime.on_prepare(tracking.ensure_indexes)

    keystore = runtime.kernel.keystore
    repository = runtime.kernel.repository
    projection = ReadModelProjection(
        keystore,
        consents,
        policies,
        tracking,
        max_tracking_events_per_subject=settings.tracking_max_events_per_subject,
    )
    runtime.projection(PROJECTION_NAME, projection.apply)
    service = ConsentService(
        repository,
        keystore,
        consents,
        policies,
        projection,
        TrackingMetrics(runtime.metrics_registry),
    )
    erasure = ConsentErasure(
        repository, keystore, consents, tracking, max_export_events=settings.export_max_events
    )
    runtime.erasure(erasure)

    audit = None
    if db is not None:
        # Tokens of closed or erased accounts stop working here as soon as identity says so.
        # Open audit streams of such an account end too (within the stream recheck).
        revocations = runtime.revoke_tokens_from_identity()
        # Every compliance read of the log is recorded through the trail (consent.DataAccessed).
        audit = build_audit(
            settings,
            db,
            registry=runtime.metrics_registry,
            denylist=revocations,
            trail=runtime.trail,
        )
        runtime.component(audit, *audit.readiness_checks)
        runtime.document_topic(
            runtime.topics.events_pattern(),
            reads=True,
            description=(
                "The audit projector reads every `<service>.events` topic (a pattern "
                "subscription, group CONSENT_AUDIT_CONSUMER_GROUP) and appends each event's "
                "header to the hash-chained audit log; undecodable messages go to "
                "`<topic>.dlq`."
            ),
        )
        runtime.document_topic(
            runtime.topics.audit_log,
            reads=False,
            description=(
                "Every audit log entry, in seq order (retention follows it for its activity "
                "records and the seq of each erasure's evidence)."
            ),
        )
    return Consent(
        settings=settings,
        runtime=runtime,
        consents=consents,
        policies=policies,
        tracking=tracking,
        projection=projection,
        service=service,
        erasure=erasure,
        audit=audit,
    )

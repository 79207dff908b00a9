"""Composition root of the profiles service: settings in, the wired service out (no I/O).

`bootstrap(settings)` builds the service on its runtime (`mmgen.runtime`), which owns the
plumbing: the event kernel, topics, the outbox relay, the inbox consumer, the checkpointed
projection, readiness and metrics. Profiles registers what is its own:

- the read models' indexes (`on_prepare`);
- `ProfileProjection` over its own store (profile rows and search postings);
- inbox handlers for what it learns from other services' events (`adapters.foreign`):
  consent's `ConsentGranted` / `ConsentWithdrawn`, projects' `ProjectCreated`, `MemberAdded`,
  `MemberRemoved`, identity's `AccountClosed` / `SubjectErased` (the profile is hidden and
  taken off search; the same events also revoke the account's tokens here);
- `ProfilesErasure` as the participant of retention's commands.

Unit tests pass fakes: `bootstrap(settings, kernel=in_memory_kernel(registry=profiles_registry()))`
runs over the kernel's in-memory store and keystore and the `InMemory*` read models (no
database, no broker, so no token revocations). Tests of one part pass that part's fake only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.kernel import EventKernel
from mmgen.events.revocation import SubjectRevocations
from mmgen.profiles.adapters.memory import (
    InMemoryConsentGrants,
    InMemoryMemberships,
    InMemoryProfileReadModel,
    InMemorySearchIndex,
)
from mmgen.profiles.adapters.mongo import (
    MongoConsentGrants,
    MongoMemberships,
    MongoProfileReadModel,
    MongoSearchIndex,
)
from mmgen.profiles.adapters.projection import ForeignEvents, ProfileProjection
from mmgen.profiles.adapters.read_models import (
    ConsentGrants,
    KeystoreErasedSubjects,
    Memberships,
    ProfileReadModel,
    SearchIndex,
)
from mmgen.profiles.domain.events import profiles_registry
from mmgen.profiles.service_layer.erasure import ProfilesErasure
from mmgen.profiles.service_layer.profiles import Relationships
from mmgen.profiles.service_layer.search import SearchLimits
from mmgen.profiles.settings import ProfilesSettings
from mmgen.runtime.service import ServiceRuntime

P = TypeVar("P")


@dataclass
class ProfilesService:
    """What the entrypoints (and tests) work with: the runtime, the read models, the parts."""

    settings: ProfilesSettings
    runtime: ServiceRuntime
    profiles: ProfileReadModel
    index: SearchIndex
    consents: ConsentGrants
    memberships: Memberships
    projection: ProfileProjection
    foreign: ForeignEvents
    relationships: Relationships
    erasure: ProfilesErasure
    search_limits: SearchLimits
    #: Tokens of accounts identity closed or erased; None over an in-memory kernel.
    revocations: SubjectRevocations | None

    @property
    def repository(self) -> Any:
        return self.runtime.kernel.repository


def bootstrap(
    settings: ProfilesSettings,
    *,
    kernel: EventKernel | None = None,
    profiles: ProfileReadModel | None = None,
    index: SearchIndex | None = None,
    consents: ConsentGrants | None = None,
    memberships: Memberships | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> ProfilesService:
    """Wire the service without I/O; the runtime's lifespan connects and starts things.

    `kernel`: an in-memory kernel over a fresh `profiles_registry()` (the runtime adds the
    standard events to it). Read models not given are `Mongo*` adapters on the service's
    database, or `InMemory*` fakes when the runtime has none.
    """
    registry = kernel.mapper.registry if kernel is not None else profiles_registry()
    runtime = ServiceRuntime(settings, registry, kernel=kernel, metrics_registry=metrics_registry)
    db = runtime.db

    def port(given: P | None, mongo: Callable[[AsyncDatabase[Any]], P], fake: Callable[[], P]) -> P:
        if given is not None:
            return given
        if db is None:
            return fake()
        adapter = mongo(db)
        runtime.on_prepare(adapter.ensure_indexes)  # type: ignore[attr-defined]
        return adapter

    profiles = port(profiles, MongoProfileReadModel, InMemoryProfileReadModel)
    index = port(
        index,
        lambda db: MongoSearchIndex(db, lookup_chunk=settings.search_lookup_chunk),
        InMemorySearchIndex,
    )
    consents = port(consents, MongoConsentGrants, InMemoryConsentGrants)
    memberships = port(memberships, MongoMemberships, InMemoryMemberships)

    repository = runtime.kernel.repository
    keystore = runtime.kernel.keystore
    projection = ProfileProjection(repository, profiles, index)
    runtime.projection(projection.name, projection.apply, reset=projection.reset)

    # Tokens of closed or erased accounts stop working here as soon as identity says so; the
    # same events then hide the creator's profile (handlers run in registration order).
    revocations = runtime.revoke_tokens_from_identity() if db is not None else None
    foreign = ForeignEvents(
        consents=consents,
        memberships=memberships,
        profiles=profiles,
        index=index,
        erased=KeystoreErasedSubjects(keystore),
    )
    for event_type, handler in sorted(foreign.handlers().items()):
        runtime.on(event_type, handler)

    erasure = ProfilesErasure(
        repository=repository,
        keystore=keystore,
        profiles=profiles,
        index=index,
        consents=consents,
        memberships=memberships,
        max_export_events=settings.export_max_events,
    )
    runtime.erasure(erasure)
    return ProfilesService(
        settings=settings,
        runtime=runtime,
        profiles=profiles,
        index=index,
        consents=consents,
        memberships=memberships,
        projection=projection,
        foreign=foreign,
        relationships=Relationships(consents, memberships),
        erasure=erasure,
        search_limits=SearchLimits.of(settings),
        revocations=revocations,
    )

"""Composition root of the projects service: settings in, the wired service out (no I/O).

`bootstrap(settings)` builds the service on its runtime (`mmgen.runtime`), which owns the
plumbing: the event kernel, topics, the outbox relay, the inbox consumer (retention's commands;
identity's account events), the checkpointed read-model projection, readiness and metrics.
Projects registers what is its own:

- its read models' indexes (`on_prepare`);
- one projection of its own events into the projects, messages, files and disclosures read
  models — one tailer, in store order, since a thread's projection reads its project's row
  (an anonymised project's messages are never projected again);
- the known-users read model from identity's `UserRegistered`, `AccountClosed` and
  `SubjectErased` (inbox handlers; the token revocations read the last two as well);
- its erasure participant; the sweeper of uploads a crash left unrecorded.

Reads and refusals are audited through `TrailAccessLog`, the `AccessLog` port on the runtime's
audit trail (`projects.DataAccessed`, `projects.AccessDenied`).

Tests pass fakes: `bootstrap(settings, kernel=in_memory_kernel(registry=projects_registry()))`
runs over the kernel's in-memory store and keystore and the `InMemory*` read models (no
database, no broker, so no token revocations); any read model, chunk store or access log
passed in is used as given (integration tests pass the `Mongo*` adapters over a kernel of
their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry

from mmgen.events.consumer import HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.kernel import EventKernel
from mmgen.events.revocation import SubjectRevocations
from mmgen.projects.adapters.access_log import AccessLog, TrailAccessLog
from mmgen.projects.adapters.file_content import EncryptedFileContent
from mmgen.projects.adapters.known_users_projection import (
    IDENTITY_EVENT_TYPES,
    KnownUsersProjector,
)
from mmgen.projects.adapters.memory import (
    InMemoryChunkStore,
    InMemoryDisclosuresIndex,
    InMemoryFilesIndex,
    InMemoryKnownUsers,
    InMemoryMessagesIndex,
    InMemoryProjectsReadModel,
)
from mmgen.projects.adapters.mongo_chunks import MongoChunkStore
from mmgen.projects.adapters.mongo_disclosures import MongoDisclosuresIndex
from mmgen.projects.adapters.mongo_known_users import MongoKnownUsers
from mmgen.projects.adapters.mongo_projects import MongoProjectsReadModel
from mmgen.projects.adapters.mongo_threads import MongoFilesIndex, MongoMessagesIndex
from mmgen.projects.adapters.ports import (
    ChunkStore,
    DisclosuresIndex,
    FilesIndex,
    KnownUsers,
    MessagesIndex,
    ProjectsReadModel,
)
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.events import projects_registry
from mmgen.projects.service_layer.disclosures import DisclosureUseCases
from mmgen.projects.service_layer.erasure import ProjectsErasure
from mmgen.projects.service_layer.files import FileUseCases
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.messages import MessageUseCases
from mmgen.projects.service_layer.projects import ProjectUseCases
from mmgen.projects.service_layer.sweeper import StaleUploadSweeper
from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.service import ServiceRuntime

#: The checkpoint name of the projection of the service's own events.
PROJECTION_NAME = "projects-read-models"


@dataclass
class Projects:
    """The wired service: its runtime, read models, use cases and erasure participant."""

    settings: ProjectsSettings
    runtime: ServiceRuntime
    projects_rm: ProjectsReadModel
    messages_rm: MessagesIndex
    files_rm: FilesIndex
    chunks: ChunkStore
    known_users: KnownUsers
    disclosures_rm: DisclosuresIndex
    access_log: AccessLog
    content: EncryptedFileContent
    projector: ProjectsProjector
    known_users_projector: KnownUsersProjector
    gate: AccessGate
    projects: ProjectUseCases
    messages: MessageUseCases
    files: FileUseCases
    disclosures: DisclosureUseCases
    erasure: ProjectsErasure
    sweeper: StaleUploadSweeper
    #: Tokens of accounts identity closed or erased; None without a database.
    revocations: SubjectRevocations | None

    @property
    def kernel(self) -> EventKernel:
        return self.runtime.kernel


def bootstrap(
    settings: ProjectsSettings,
    *,
    kernel: EventKernel | None = None,
    projects: ProjectsReadModel | None = None,
    messages: MessagesIndex | None = None,
    files: FilesIndex | None = None,
    chunks: ChunkStore | None = None,
    known_users: KnownUsers | None = None,
    disclosures: DisclosuresIndex | None = None,
    access_log: AccessLog | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> Projects:
    """Wire the service without I/O; the runtime's lifespan connects and starts things.

    `kernel`: a kernel over a fresh `projects_registry()` (the runtime adds the standard
    events to that registry). Read models not given are `Mongo*` adapters on the service's
    database, or `InMemory*` fakes when the runtime has none (a kernel was passed).
    """
    registry = projects_registry() if kernel is None else kernel.mapper.registry
    runtime = ServiceRuntime(settings, registry, kernel=kernel, metrics_registry=metrics_registry)
    db = runtime.db
    if db is None:
        projects = projects or InMemoryProjectsReadModel()
        messages = messages or InMemoryMessagesIndex()
        files = files or InMemoryFilesIndex()
        chunks = chunks or InMemoryChunkStore()
        known_users = known_users or InMemoryKnownUsers()
        disclosures = disclosures or InMemoryDisclosuresIndex()
    else:
        mongo_projects = MongoProjectsReadModel(db)
        mongo_messages = MongoMessagesIndex(db)
        mongo_files = MongoFilesIndex(db)
        mongo_chunks = MongoChunkStore(db)
        mongo_users = MongoKnownUsers(db)
        mongo_disclosures = MongoDisclosuresIndex(db)
        for adapter in (
            mongo_projects,
            mongo_messages,
            mongo_files,
            mongo_chunks,
            mongo_users,
            mongo_disclosures,
        ):
            runtime.on_prepare(adapter.ensure_indexes)
        projects = projects or mongo_projects
        messages = messages or mongo_messages
        files = files or mongo_files
        chunks = chunks or mongo_chunks
        known_users = known_users or mongo_users
        disclosures = disclosures or mongo_disclosures

    repo = runtime.kernel.repository
    keystore = runtime.kernel.keystore
    log = access_log or TrailAccessLog(runtime.trail)
    content = EncryptedFileContent(
        chunks,
        keystore,
        chunk_bytes=settings.file_chunk_bytes,
        max_bytes=settings.max_file_bytes,
        read_window=settings.file_read_window_chunks,
    )
    projector = ProjectsProjector(repo, keystore, projects, messages, files, chunks, disclosures)
    runtime.projection(PROJECTION_NAME, projector.apply)
    gate = AccessGate(projects, log)
    file_cases = FileUseCases(
        repo,
        gate,
        files,
        content,
        projector,
        allowed_content_types=settings.allowed_content_types,
    )
    erasure = ProjectsErasure(
        repo,
        keystore,
        projects,
        messages,
        files,
        content,
        known_users,
        disclosures,
        projector,
        max_records=settings.export_max_records,
    )
    runtime.erasure(erasure)

    known_users_projector = KnownUsersProjector(known_users)
    revocations = runtime.revoke_tokens_from_identity() if db is not None else None

    async def from_identity(envelope: Envelope, ctx: HandlerContext) -> None:
        await known_users_projector.apply(envelope)

    for event_type in sorted(IDENTITY_EVENT_TYPES):
        runtime.on(event_type, from_identity)

    sweeper = StaleUploadSweeper(
        file_cases,
        older_than=timedelta(seconds=settings.stale_upload_seconds),
        every=settings.stale_upload_sweep_seconds,
    )
    runtime.component(sweeper)
    return Projects(
        settings=settings,
        runtime=runtime,
        projects_rm=projects,
        messages_rm=messages,
        files_rm=files,
        chunks=chunks,
        known_users=known_users,
        disclosures_rm=disclosures,
        access_log=log,
        content=content,
        projector=projector,
        known_users_projector=known_users_projector,
        gate=gate,
        projects=ProjectUseCases(repo, gate, projects, projector, known_users),
        messages=MessageUseCases(repo, gate, messages, projector),
        files=file_cases,
        disclosures=DisclosureUseCases(repo, gate, disclosures),
        erasure=erasure,
        sweeper=sweeper,
        revocations=revocations,
    )

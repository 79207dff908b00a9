"""Test support: the service's use cases assembled over fakes or over a real database, and
byte samples of every accepted content type.

`in_memory()` wires every use case on the in-memory kernel and `InMemory*` read models (unit
tests); `on_mongo(db)` wires the same on the Mongo kernel and `Mongo*` adapters, with their
indexes (integration tests). Both return a `Wired` holding each part, so a test can act
through the use cases and inspect the stores.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from mmgen.events.kernel import EventKernel, in_memory_kernel, open_mongo_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.platform import Environment
from mmgen.platform.auth.principal import ProcessingPurpose, Role
from mmgen.projects.adapters.access_log import InMemoryAccessLog
from mmgen.projects.adapters.file_content import EncryptedFileContent
from mmgen.projects.adapters.known_users_projection import KnownUsersProjector
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
from mmgen.projects.domain.events import registry
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.service_layer.disclosures import DisclosureUseCases
from mmgen.projects.service_layer.erasure import ProjectsErasure
from mmgen.projects.service_layer.files import FileUseCases
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.messages import MessageUseCases
from mmgen.projects.service_layer.projects import ProjectUseCases
from mmgen.projects.settings import ProjectsSettings

_FILLER = bytes(range(256)) * 4

#: Bytes of each accepted content type: its real signature, filler after it.
SAMPLES: dict[str, bytes] = {
    "image/png": b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + _FILLER,
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + _FILLER,
    "image/gif": b"GIF89a\x01\x00\x01\x00" + _FILLER,
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + _FILLER,
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + _FILLER,
    "video/mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + _FILLER,
    "text/plain": "Brief: shoot at dawn. Ça va? 日本語\n".encode() * 40,
}


@dataclass
class Wired:
    """Every part of the service below its HTTP edge."""

    settings: ProjectsSettings
    kernel: EventKernel
    projects_rm: ProjectsReadModel
    messages_rm: MessagesIndex
    files_rm: FilesIndex
    chunks: ChunkStore
    known_users: KnownUsers
    disclosures_rm: DisclosuresIndex
    access_log: InMemoryAccessLog
    content: EncryptedFileContent
    projector: ProjectsProjector
    known_users_projector: KnownUsersProjector
    gate: AccessGate
    projects: ProjectUseCases
    messages: MessageUseCases
    files: FileUseCases
    disclosures: DisclosureUseCases
    erasure: ProjectsErasure


def settings_for_tests(**overrides: Any) -> ProjectsSettings:
    """Settings for tests: no environment secrets, no JWKS."""
    return ProjectsSettings(
        environment=Environment.test, jwks_url=None, log_json=False, **overrides
    )


def assemble(
    settings: ProjectsSettings,
    kernel: EventKernel,
    *,
    projects: ProjectsReadModel,
    messages: MessagesIndex,
    files: FilesIndex,
    chunks: ChunkStore,
    known_users: KnownUsers,
    disclosures: DisclosuresIndex,
) -> Wired:
    access_log = InMemoryAccessLog()
    repo = kernel.repository
    content = EncryptedFileContent(
        chunks,
        kernel.keystore,
        chunk_bytes=settings.file_chunk_bytes,
        max_bytes=settings.max_file_bytes,
        read_window=settings.file_read_window_chunks,
    )
    projector = ProjectsProjector(
        repo, kernel.keystore, projects, messages, files, chunks, disclosures
    )
    gate = AccessGate(projects, access_log)
    return Wired(
        settings=settings,
        kernel=kernel,
        projects_rm=projects,
        messages_rm=messages,
        files_rm=files,
        chunks=chunks,
        known_users=known_users,
        disclosures_rm=disclosures,
        access_log=access_log,
        content=content,
        projector=projector,
        known_users_projector=KnownUsersProjector(known_users),
        gate=gate,
        projects=ProjectUseCases(repo, gate, projects, projector, known_users),
        messages=MessageUseCases(repo, gate, messages, projector),
        files=FileUseCases(
            repo,
            gate,
            files,
            content,
            projector,
            allowed_content_types=settings.allowed_content_types,
        ),
        disclosures=DisclosureUseCases(repo, gate, disclosures),
        erasure=ProjectsErasure(
            repo,
            kernel.keystore,
            projects,
            messages,
            files,
            content,
            known_users,
            disclosures,
            projector,
            max_records=settings.export_max_records,
        ),
    )


def in_memory(settings: ProjectsSettings | None = None) -> Wired:
    """The service over the in-memory kernel and fakes (no I/O)."""
    return assemble(
        settings or settings_for_tests(),
        in_memory_kernel(producer="projects", registry=registry),
        projects=InMemoryProjectsReadModel(),
        messages=InMemoryMessagesIndex(),
        files=InMemoryFilesIndex(),
        chunks=InMemoryChunkStore(),
        known_users=InMemoryKnownUsers(),
        disclosures=InMemoryDisclosuresIndex(),
    )


async def on_mongo(db: Any, settings: ProjectsSettings | None = None) -> Wired:
    """The service on a real database (its own kernel and adapters, indexes created)."""
    kernel = await open_mongo_kernel(
        db,
        producer="projects",
        registry=registry,
        keyring=MasterKeyring(MasterKey.generate()),
    )
    projects = MongoProjectsReadModel(db)
    messages = MongoMessagesIndex(db)
    files = MongoFilesIndex(db)
    chunks = MongoChunkStore(db)
    known_users = MongoKnownUsers(db)
    disclosures = MongoDisclosuresIndex(db)
    for adapter in (projects, messages, files, chunks, known_users, disclosures):
        await adapter.ensure_indexes()
    return assemble(
        settings or settings_for_tests(),
        kernel,
        projects=projects,
        messages=messages,
        files=files,
        chunks=chunks,
        known_users=known_users,
        disclosures=disclosures,
    )


# --- people and projects ------------------------------------------------------------------------


def caller(
    role: str,
    user_id: str | None = None,
    *,
    purpose: str | None = None,
    route: str = "/projects/{project_id}",
) -> Caller:
    """A caller of any role (a fresh id unless given), with a declared purpose or none."""
    return Caller(
        user_id or str(uuid.uuid4()),
        Role(role),
        ProcessingPurpose(purpose) if purpose else None,
        route,
    )


def as_(who: Caller, *, purpose: str | None = None, route: str | None = None) -> Caller:
    """The same person declaring another purpose, or calling through another route."""
    return Caller(
        who.actor_id,
        who.role,
        ProcessingPurpose(purpose) if purpose else None,
        route or who.route,
    )


@dataclass(frozen=True)
class Team:
    """A project with its owner, a member creator and a member staff (working under
    `project_execution`)."""

    project_id: str
    owner: Caller
    creator: Caller
    staff: Caller


async def known(wired: Wired, who: Caller) -> Caller:
    """Make the caller's account known, as identity's `UserRegistered` would."""
    await wired.known_users.register(who.actor_id, str(who.role))
    return who


async def make_team(
    wired: Wired,
    *,
    title: str = "Spring campaign",
    requirements: str = "Three models, one studio day",
) -> Team:
    owner = await known(wired, caller("client"))
    creator = await known(wired, caller("creator"))
    staff = await known(wired, caller("staff", purpose="project_execution"))
    view = await wired.projects.create(
        owner, title=title, requirements=requirements, budget_band="5k_20k"
    )
    project_id = view.facts.project_id
    await wired.projects.add_member(owner, project_id, user_id=creator.actor_id, role="creator")
    await wired.projects.add_member(owner, project_id, user_id=staff.actor_id, role="staff")
    return Team(project_id, owner, creator, staff)


async def pieces(data: bytes, size: int = 7_919) -> AsyncIterator[bytes]:
    """`data` as an upload body arrives: in pieces of an awkward size."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])

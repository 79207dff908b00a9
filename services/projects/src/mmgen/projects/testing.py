"""Test support: the service assembled over fakes or over a real database, callers, teams,
and byte samples of every accepted content type.

`in_memory()` is `bootstrap()` on the in-memory kernel and `InMemory*` read models (unit
tests); `on_mongo(db)` is `bootstrap()` on a Mongo kernel and the `Mongo*` adapters of `db`,
with their indexes (integration tests). Both hand reads and refusals to an
`InMemoryAccessLog`, so a test can see what the use cases recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from mmgen.events.kernel import in_memory_kernel, open_mongo_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.platform import Environment
from mmgen.platform.auth.principal import ProcessingPurpose, Role
from mmgen.projects.adapters.access_log import InMemoryAccessLog
from mmgen.projects.adapters.mongo_chunks import MongoChunkStore
from mmgen.projects.adapters.mongo_disclosures import MongoDisclosuresIndex
from mmgen.projects.adapters.mongo_known_users import MongoKnownUsers
from mmgen.projects.adapters.mongo_projects import MongoProjectsReadModel
from mmgen.projects.adapters.mongo_threads import MongoFilesIndex, MongoMessagesIndex
from mmgen.projects.bootstrap import Projects, bootstrap
from mmgen.projects.domain.events import projects_registry
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.settings import ProjectsSettings

#: The service as the use-case tests see it (`wired.access_log` is an `InMemoryAccessLog`).
Wired = Projects

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


def settings_for_tests(**overrides: Any) -> ProjectsSettings:
    """Settings for tests: no environment secrets, no JWKS."""
    return ProjectsSettings(
        environment=Environment.test, jwks_url=None, log_json=False, **overrides
    )


def in_memory(settings: ProjectsSettings | None = None) -> Wired:
    """The service over the in-memory kernel and fakes (no I/O)."""
    kernel = in_memory_kernel(producer="projects", registry=projects_registry())
    return bootstrap(
        settings or settings_for_tests(), kernel=kernel, access_log=InMemoryAccessLog()
    )


async def on_mongo(db: Any, settings: ProjectsSettings | None = None) -> Wired:
    """The service's use cases on a real database (its own kernel and adapters, indexes
    created); no messaging."""
    kernel = await open_mongo_kernel(
        db,
        producer="projects",
        registry=projects_registry(),
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
    return bootstrap(
        settings or settings_for_tests(),
        kernel=kernel,
        projects=projects,
        messages=messages,
        files=files,
        chunks=chunks,
        known_users=known_users,
        disclosures=disclosures,
        access_log=InMemoryAccessLog(),
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


# --- upload bodies ------------------------------------------------------------------------------

UPLOAD_BOUNDARY = "mmgen-upload-7MA4YWxkTrZu0gW"


def multipart_headers(boundary: str = UPLOAD_BOUNDARY) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def multipart_head(filename: str, content_type: str, boundary: str = UPLOAD_BOUNDARY) -> bytes:
    """What comes before the file's bytes in an upload body (one `file` part)."""
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def multipart_tail(boundary: str = UPLOAD_BOUNDARY) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()


def multipart_body(filename: str, content_type: str, data: bytes) -> bytes:
    """A whole upload body, for small files."""
    return multipart_head(filename, content_type) + data + multipart_tail()


async def multipart_stream(
    filename: str, content_type: str, data: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """An upload body as a stream (no Content-Length): large files never held whole."""
    yield multipart_head(filename, content_type)
    async for piece in data:
        yield piece
    yield multipart_tail()


async def generated(
    size: int, *, head: bytes = b"", piece: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """`size` bytes made as they are sent (`head` first), never held whole: a pattern that
    depends on the offset, so a reordered or cut download would not match its digest."""
    sent = 0
    if head:
        yield head
        sent = len(head)
    block = bytes(range(256)) * (piece // 256)
    while sent < size:
        n = min(piece, size - sent)
        counter = (sent // piece).to_bytes(8, "big")
        yield (counter + block)[:n]
        sent += n

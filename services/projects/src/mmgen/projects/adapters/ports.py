"""Ports of the projects service's read models and file storage, and the rows they hold.

Every port has an `InMemory*` fake (adapters/memory.py) and a `Mongo*` adapter. The rows hold
no personal value in clear: titles, message texts and file names stay encrypted under their
owner's data key (a `PiiBlob` copied from the event that carried them), file contents are
chunks sealed under the uploader's key. Erasing a key therefore erases the read models too;
erasure then also removes the ciphertext and the subject's ids.

Reads are bounded (INFRA.md: the database applies no limit early): by key, by a list of keys
computed from per-project sequence numbers, or by an indexed equality whose matches are one
subject's or one project's own rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from mmgen.events.envelope import PiiBlob
from mmgen.projects.domain.events import BudgetBand, MemberRole, ProjectStatus, Recipient
from mmgen.projects.domain.model import PersonalRef

UserStatus = Literal["active", "closed", "erased"]


def slot(project_id: str, number: int) -> str:
    """The key of a project's n-th message or file: pages are lists of keys, not ranges."""
    return f"{project_id}:{number:012d}"


# --- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectRow:
    """A project as lists and access checks need it: facts, members, a pointer to its title."""

    project_id: str
    owner_id: str
    status: ProjectStatus
    budget_band: BudgetBand | None
    deadline: date | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    members: dict[str, MemberRole]
    version: int
    title_ref: PersonalRef | None
    anonymized: bool = False

    @property
    def member_ids(self) -> list[str]:
        """Everyone the project is visible to as theirs: the owner, then the members."""
        return [self.owner_id, *sorted(self.members)]


@dataclass(frozen=True)
class MessageRow:
    """One message of a thread; `pii` is the text sealed under the author's key."""

    project_id: str
    number: int
    message_id: str
    author_id: str | None
    posted_at: datetime
    event_id: str
    schema_version: int
    pii: PiiBlob | None
    erased: bool = False


@dataclass(frozen=True)
class FileRow:
    """One stored file: facts, the name sealed under the uploader's key, where its key is."""

    project_id: str
    number: int
    file_id: str
    uploader_id: str | None
    content_type: str
    size: int
    chunks: int
    chunk_bytes: int
    key_id: str
    uploaded_at: datetime
    event_id: str
    schema_version: int
    name_pii: PiiBlob | None
    erased: bool = False


@dataclass(frozen=True)
class StoredChunk:
    """One encrypted chunk as stored: `data` is AES-256-GCM ciphertext with its tag."""

    file_id: str
    index: int
    nonce: bytes
    data: bytes


@dataclass(frozen=True)
class KnownUser:
    """An account as identity's events describe it: id, role, whether it is active."""

    user_id: str
    role: str | None
    status: UserStatus

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class DisclosureRow:
    """A disclosure: who received which categories of whose data, why, on which basis."""

    disclosure_id: str
    project_id: str
    recipient: Recipient
    purpose: str
    legal_basis: str
    categories: tuple[str, ...]
    subject_ids: tuple[str, ...]
    disclosed_at: datetime
    actor_id: str | None


# --- ports ----------------------------------------------------------------------------------------


class ProjectsReadModel(Protocol):
    """Projects with their members embedded (the membership read model is this one)."""

    async def put(self, row: ProjectRow) -> bool:
        """Write the project's state as of `row.version`; False if a newer one is there."""
        ...

    async def get(self, project_id: str) -> ProjectRow | None: ...

    async def many(self, project_ids: Sequence[str]) -> list[ProjectRow]:
        """The rows of these ids that exist, in the order asked."""
        ...

    async def relations_of(self, user_id: str) -> dict[str, str]:
        """The projects the user owns or is a member of (one indexed equality), each with
        `"owner"` or the member's role."""
        ...

    async def ids_owned_by(self, owner_id: str) -> list[str]: ...

    async def anonymize(self, project_id: str) -> bool:
        """Drop the title pointer and mark anonymised; True if the row existed unanonymised."""
        ...


class Sequenced(Protocol):
    """Per-project numbering shared by messages and files (gaps allowed, never reuse)."""

    async def next_number(self, project_id: str) -> int: ...

    async def last_number(self, project_id: str) -> int: ...


class MessagesIndex(Sequenced, Protocol):
    async def add(self, row: MessageRow) -> bool:
        """Insert once (keyed by slot); False if it was there. Keeps numbering ahead of it."""
        ...

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[MessageRow]:
        """The messages with these numbers, newest first."""
        ...

    async def of_author(self, author_id: str, limit: int) -> list[MessageRow]: ...

    async def count_of_author(self, author_id: str) -> int: ...

    async def erase_author(self, author_id: str) -> int:
        """Drop the author's texts and id from their messages; returns how many."""
        ...

    async def delete_project(self, project_id: str) -> int: ...


class FilesIndex(Sequenced, Protocol):
    async def add(self, row: FileRow) -> bool: ...

    async def get(self, file_id: str) -> FileRow | None: ...

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[FileRow]: ...

    async def of_uploader(self, uploader_id: str, limit: int) -> list[FileRow]: ...

    async def count_of_uploader(self, uploader_id: str) -> int: ...

    async def erase_uploader(self, uploader_id: str) -> list[str]:
        """Drop the uploader's file names and id; returns the ids of the files erased."""
        ...

    async def delete_project(self, project_id: str) -> list[str]:
        """Delete the project's file rows; returns their file ids (for their chunks)."""
        ...


class ChunkStore(Protocol):
    """Encrypted file chunks; an upload is marked pending until its event is stored."""

    async def begin(self, file_id: str, started_at: datetime) -> None: ...

    async def put(self, chunk: StoredChunk) -> None: ...

    async def read(self, file_id: str, indexes: Sequence[int]) -> list[StoredChunk]:
        """The chunks with these indexes that exist, in index order."""
        ...

    async def finish(self, file_id: str) -> None:
        """The upload is complete and recorded: it is no longer a leftover to purge."""
        ...

    async def delete(self, file_id: str) -> int:
        """Delete every chunk of the file (and its pending mark); returns the chunks deleted."""
        ...

    async def stale_uploads(self, started_before: datetime) -> list[str]: ...


class KnownUsers(Protocol):
    """Accounts and roles learnt from identity's events (never by calling identity)."""

    async def get(self, user_id: str) -> KnownUser | None: ...

    async def register(self, user_id: str, role: str) -> None:
        """A new account (idempotent; never revives a closed or erased one)."""
        ...

    async def close(self, user_id: str) -> None: ...

    async def forget(self, user_id: str) -> bool:
        """Erased: keep only a tombstone so a redelivered registration cannot revive it.
        True if a live row was there."""
        ...


class DisclosuresIndex(Protocol):
    async def add(self, row: DisclosureRow) -> bool: ...

    async def of_subject(self, subject_id: str, limit: int) -> list[DisclosureRow]: ...

    async def count_of_subject(self, subject_id: str) -> int: ...

    async def forget_subject(self, subject_id: str) -> int:
        """Remove the subject's id from the disclosures naming it; returns how many."""
        ...

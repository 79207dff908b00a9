"""Projections of the service's own events into its read models (idempotent, replayable).

The use cases call these right after appending (read-your-writes); the runtime's catch-up
projector calls `apply(envelope)` for every stored event in `producer_seq` order, so a crash
between an append and its projection is repaired. Applying an event twice changes nothing:
projects are written as full states guarded by their stream version, messages, files and
disclosures are inserted once under their key. A message or file of an author whose key is
already shredded is projected as erased (and a file's chunks deleted), and nothing of an
anonymised project's thread is projected again: erasure is never undone by a replay.
"""

from __future__ import annotations

from mmgen.events.envelope import Envelope
from mmgen.events.keys import Keystore
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.personal import PersonalReader
from mmgen.projects.adapters.ports import (
    ChunkStore,
    DisclosureRow,
    DisclosuresIndex,
    FileRow,
    FilesIndex,
    MessageRow,
    MessagesIndex,
    ProjectRow,
    ProjectsReadModel,
)
from mmgen.projects.domain.events import (
    DATA_DISCLOSED,
    FILE_UPLOADED,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    MESSAGE_POSTED,
    PROJECT_CREATED,
    PROJECT_STATUS_CHANGED,
    PROJECT_UPDATED,
    DataDisclosed,
    FileUploaded,
    MessagePosted,
)
from mmgen.projects.domain.model import Project

PROJECT_STREAM_TYPES = frozenset(
    {PROJECT_CREATED, PROJECT_UPDATED, PROJECT_STATUS_CHANGED, MEMBER_ADDED, MEMBER_REMOVED}
)


def project_row(project: Project) -> ProjectRow:
    """The read-model row of a folded project (no personal value, only a title pointer)."""
    assert project.created_at is not None
    assert project.updated_at is not None
    assert project.status_changed_at is not None
    return ProjectRow(
        project_id=project.id,
        owner_id=project.owner_id,
        status=project.status,
        budget_band=project.budget_band,
        deadline=project.deadline,
        created_at=project.created_at,
        updated_at=project.updated_at,
        status_changed_at=project.status_changed_at,
        members=dict(project.members),
        version=project.version,
        title_ref=None if project.anonymized else project.title_ref,
        anonymized=project.anonymized,
    )


def message_row(envelope: Envelope, data: MessagePosted, *, erased: bool) -> MessageRow:
    return MessageRow(
        project_id=data.project_id,
        number=data.number,
        message_id=data.message_id,
        author_id=None if erased else envelope.subject_id,
        posted_at=envelope.occurred_at,
        event_id=envelope.event_id,
        schema_version=envelope.schema_version,
        pii=None if erased else envelope.pii,
        erased=erased,
    )


def file_row(envelope: Envelope, data: FileUploaded, *, erased: bool) -> FileRow:
    return FileRow(
        project_id=data.project_id,
        number=data.number,
        file_id=data.file_id,
        uploader_id=None if erased else envelope.subject_id,
        content_type=data.content_type,
        size=data.size,
        chunks=data.chunks,
        chunk_bytes=data.chunk_bytes,
        key_id=data.key_id,
        uploaded_at=envelope.occurred_at,
        event_id=envelope.event_id,
        schema_version=envelope.schema_version,
        name_pii=None if erased else envelope.pii,
        erased=erased,
    )


def disclosure_row(envelope: Envelope, data: DataDisclosed) -> DisclosureRow:
    return DisclosureRow(
        disclosure_id=data.disclosure_id,
        project_id=data.project_id,
        recipient=data.recipient,
        purpose=data.purpose,
        legal_basis=data.legal_basis,
        categories=tuple(data.categories),
        subject_ids=tuple(data.subject_ids),
        disclosed_at=envelope.occurred_at,
        actor_id=envelope.actor.id if envelope.actor else None,
    )


class ProjectsProjector:
    """Keeps the projects, messages, files and disclosures read models in step with the store."""

    def __init__(
        self,
        repo: EventSourcedRepository,
        keystore: Keystore,
        projects: ProjectsReadModel,
        messages: MessagesIndex,
        files: FilesIndex,
        chunks: ChunkStore,
        disclosures: DisclosuresIndex,
    ) -> None:
        self.repo = repo
        self.keystore = keystore
        self.projects = projects
        self.messages = messages
        self.files = files
        self.chunks = chunks
        self.disclosures = disclosures
        self.reader = PersonalReader(repo.mapper, repo.store)

    async def project_state(self, project: Project) -> bool:
        """Write a folded project (the use cases' path: they hold the aggregate)."""
        return await self.projects.put(project_row(project))

    async def apply(self, envelope: Envelope) -> None:
        """Apply one stored event (the catch-up path); events of other types are ignored."""
        kind = envelope.event_type
        if kind in PROJECT_STREAM_TYPES:
            row = await self.projects.get(envelope.stream_id)
            if row is not None and row.version >= envelope.stream_version:
                return
            project = await self.repo.get(Project, envelope.stream_id)
            if project is not None and project.created:
                await self.project_state(project)
        elif kind == MESSAGE_POSTED:
            message = self.reader.public_data(envelope)
            assert isinstance(message, MessagePosted)
            if await self._project_anonymized(message.project_id):
                return
            erased = await self._owner_erased(envelope)
            await self.messages.add(message_row(envelope, message, erased=erased))
        elif kind == FILE_UPLOADED:
            upload = self.reader.public_data(envelope)
            assert isinstance(upload, FileUploaded)
            if await self._project_anonymized(upload.project_id):
                await self.chunks.delete(upload.file_id)
                return
            erased = await self._owner_erased(envelope)
            await self.files.add(file_row(envelope, upload, erased=erased))
            if erased:
                await self.chunks.delete(upload.file_id)
            else:
                await self.chunks.finish(upload.file_id)
        elif kind == DATA_DISCLOSED:
            disclosure = self.reader.public_data(envelope)
            assert isinstance(disclosure, DataDisclosed)
            await self.disclosures.add(disclosure_row(envelope, disclosure))

    async def _project_anonymized(self, project_id: str) -> bool:
        """An anonymised project's messages and files were deleted: never re-project them."""
        row = await self.projects.get(project_id)
        return row is not None and row.anonymized

    async def _owner_erased(self, envelope: Envelope) -> bool:
        owner = envelope.owner
        return owner is not None and await self.keystore.is_erased(owner)

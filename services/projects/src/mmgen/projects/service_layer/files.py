"""File use cases: upload (streamed, checked, encrypted), list, download (streamed, decrypted).

The content is sealed in chunks under the **uploader's** key, its name travels in the
`FileUploaded` event under the same key: erasing the uploader erases both. The event is
appended only once every chunk is stored; if the append fails the chunks are deleted, so no
content exists that no event accounts for (and a crash's leftovers are purged as stale).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import timedelta
from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.errors import OwnerErasedError
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.file_content import EncryptedFileContent
from mmgen.projects.adapters.personal import PersonalReader
from mmgen.projects.adapters.ports import FileRow, FilesIndex
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.access import Operation
from mmgen.projects.domain.content_types import declared_type_acceptable
from mmgen.projects.domain.errors import (
    ContentTypeNotAllowedError,
    FileErasedError,
    ProjectFileNotFoundError,
    SubjectErasedError,
)
from mmgen.projects.domain.events import FILE_UPLOADED, FileName, FileUploaded
from mmgen.projects.domain.files import safe_filename
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.messages import ensure_open_for_content
from mmgen.projects.service_layer.paging import before_number, numbers_below
from mmgen.projects.service_layer.views import Download, FileView, Page, Read


class FileUseCases:
    def __init__(
        self,
        repo: EventSourcedRepository,
        gate: AccessGate,
        files: FilesIndex,
        content: EncryptedFileContent,
        projector: ProjectsProjector,
        *,
        allowed_content_types: tuple[str, ...],
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.repo = repo
        self.gate = gate
        self.files = files
        self.content = content
        self.projector = projector
        self.allowed = allowed_content_types
        self.reader = PersonalReader(repo.mapper, repo.store)
        self.new_id = new_id

    async def upload(
        self,
        caller: Caller,
        project_id: str,
        *,
        filename: str | None,
        content_type: str,
        body: AsyncIterable[bytes],
    ) -> FileView:
        """Store a file streamed from `body`; refused uploads (413, 415) leave nothing."""
        admitted = await self.gate.enter(caller, project_id, Operation.upload_file)
        ensure_open_for_content(admitted.row)
        accepted = declared_type_acceptable(content_type, self.allowed)
        if accepted is None:
            raise ContentTypeNotAllowedError(content_type[:100], self.allowed)
        file_id = self.new_id()
        name = safe_filename(filename)
        try:
            stored = await self.content.store(
                file_id=file_id, owner=caller.key_owner, content_type=accepted, body=body
            )
        except OwnerErasedError:
            raise SubjectErasedError() from None
        try:
            number = await self.files.next_number(project_id)
            (event,) = await self.repo.append(
                f"file:{file_id}",
                0,
                [
                    NewEvent(
                        FileUploaded(
                            project_id=project_id,
                            file_id=file_id,
                            number=number,
                            content_type=accepted,
                            size=stored.size,
                            chunks=stored.chunks,
                            chunk_bytes=stored.chunk_bytes,
                            key_id=stored.key_id,
                        ),
                        personal=FileName(filename=name),
                        subject_id=caller.actor_id,
                        actor=caller.actor(),
                        purpose=str(admitted.purpose),
                        resource_id=file_id,
                    )
                ],
            )
        except BaseException as exc:
            await asyncio.shield(self.content.delete(file_id))
            if isinstance(exc, OwnerErasedError):
                raise SubjectErasedError() from None
            raise
        await self.projector.apply(event.envelope)
        return FileView(
            file_id=file_id,
            project_id=project_id,
            uploader_id=caller.actor_id,
            filename=name,
            content_type=accepted,
            size=stored.size,
            uploaded_at=event.occurred_at,
        )

    async def list(
        self,
        caller: Caller,
        project_id: str,
        *,
        limit: int,
        position: dict[str, Any] | None = None,
    ) -> Read[Page[FileView]]:
        """One page of the project's files (names and facts), newest first; recorded while
        it is read, as a page of messages is."""
        admitted = await self.gate.enter(caller, project_id, Operation.read_files)
        last = await self.files.last_number(project_id)
        numbers = numbers_below(before_number(position, last=last), limit)
        access, items = await asyncio.gather(
            self.gate.record_read(
                caller,
                admitted,
                resource_type="project_files",
                resource_id=project_id,
                categories=("files",),
                fields=("filename",),
                subject_ids=(),
                records=len(numbers),
            ),
            self._page(project_id, numbers),
        )
        lowest = numbers[-1] if numbers else 1
        return Read(Page(items, {"before": lowest} if lowest > 1 else None), access)

    async def _page(self, project_id: str, numbers: Sequence[int]) -> builtins.list[FileView]:
        rows = await self.files.window(project_id, numbers)
        return [await self._view(row) for row in rows]

    async def download(self, caller: Caller, project_id: str, file_id: str) -> Read[Download]:
        """The file's content as a decrypted stream; the download is recorded before it starts."""
        admitted = await self.gate.enter(caller, project_id, Operation.read_files)
        row = await self.files.get(file_id)
        if row is None or row.project_id != project_id:
            raise ProjectFileNotFoundError()
        view = await self._view(row)
        if view.erased or row.uploader_id is None:
            raise FileErasedError()
        content = await self.content.open(
            file_id=file_id,
            owner=f"subject:{row.uploader_id}",
            key_id=row.key_id,
            chunks=row.chunks,
        )
        access = await self.gate.record_read(
            caller,
            admitted,
            resource_type="file",
            resource_id=file_id,
            categories=("files",),
            fields=("filename", "content"),
            subject_ids=[row.uploader_id],
            records=1,
        )
        return Read(Download(view, content), access)

    async def purge_stale_uploads(self, older_than: timedelta) -> int:
        """Delete the chunks of uploads a crash left unrecorded; returns how many uploads."""
        stale = await self.content.chunks.stale_uploads(self.content.clock() - older_than)
        purged = 0
        for file_id in stale:
            if await self.files.get(file_id) is not None:
                await self.content.chunks.finish(file_id)  # recorded after all
                continue
            await self.content.delete(file_id)
            purged += 1
        return purged

    async def _view(self, row: FileRow) -> FileView:
        name: str | None = None
        if not row.erased and row.name_pii is not None:
            personal = await self.reader.open(
                event_type=FILE_UPLOADED,
                schema_version=row.schema_version,
                event_id=row.event_id,
                pii=row.name_pii,
            )
            name = None if is_erased(personal) else personal.filename
        return FileView(
            file_id=row.file_id,
            project_id=row.project_id,
            uploader_id=row.uploader_id if name is not None else None,
            filename=name,
            content_type=row.content_type,
            size=row.size,
            uploaded_at=row.uploaded_at,
            erased=name is None,
        )

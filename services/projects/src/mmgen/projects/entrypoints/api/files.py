"""`/projects/{project_id}/files`: upload (streamed), list, download (streamed, decrypted).

The upload body is never held whole: the multipart reader hands the file part's bytes on as
they arrive, and the use case checks, seals and stores them a chunk at a time. The route takes
its own body limit — the file limit plus room for the multipart envelope — so every other
route keeps the platform's small one; the use case enforces the file's own limit exactly.
"""

# No `from __future__ import annotations`: see projects.py (a page dependency from settings).
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import StreamingResponse

from mmgen.platform import body_limit
from mmgen.platform.pagination import CursorPage, PageRequest, pagination
from mmgen.projects.entrypoints.api.dependencies import CurrentCaller, Service
from mmgen.projects.entrypoints.api.multipart import (
    MAX_HEADER_BYTES,
    MAX_SKIPPED_BYTES,
    read_file_part,
)
from mmgen.projects.entrypoints.api.schemas import FileOut, page_out
from mmgen.projects.settings import ProjectsSettings

#: Multipart bytes around the file's own: fields skipped before it, part headers, boundaries.
MULTIPART_OVERHEAD = MAX_SKIPPED_BYTES + MAX_HEADER_BYTES + 1024


def content_disposition(filename: str | None) -> str:
    """`attachment` with the name as ASCII and as RFC 5987 UTF-8 (never interpreted inline)."""
    name = filename or "file"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def router(settings: ProjectsSettings) -> APIRouter:
    api = APIRouter(prefix="/projects/{project_id}/files", tags=["files"])
    FilesPage = Annotated[
        PageRequest,
        Depends(
            pagination(default_limit=settings.files_page_default, max_limit=settings.files_page_max)
        ),
    ]

    @api.post(
        "",
        name="upload_file",
        status_code=status.HTTP_201_CREATED,
        response_model=FileOut,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        },
    )
    @body_limit(settings.max_file_bytes + MULTIPART_OVERHEAD)
    async def upload_file(
        project_id: uuid.UUID, request: Request, caller: CurrentCaller, svc: Service
    ) -> FileOut:
        """Upload one file (multipart field `file`): streamed, size-limited, checked against
        its type's signature, stored encrypted under the uploader's key."""
        part = await read_file_part(request.headers.get("content-type", ""), request.stream())
        view = await svc.files.upload(
            caller,
            str(project_id),
            filename=part.filename,
            content_type=part.content_type,
            body=part.data,
        )
        return FileOut.of(view)

    @api.get("", name="list_files", response_model=CursorPage[FileOut])
    async def list_files(
        project_id: uuid.UUID, caller: CurrentCaller, svc: Service, page: FilesPage
    ) -> CursorPage[FileOut]:
        """Names and facts, newest first (a recorded read)."""
        read = await svc.files.list(
            caller, str(project_id), limit=page.limit, position=page.position
        )
        return page_out(read.value, FileOut.of)

    @api.get(
        "/{file_id}",
        name="download_file",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    async def download_file(
        project_id: uuid.UUID, file_id: uuid.UUID, caller: CurrentCaller, svc: Service
    ) -> StreamingResponse:
        """The content, decrypted as it streams; the download is recorded before its first
        byte."""
        read = await svc.files.download(caller, str(project_id), str(file_id))
        download = read.value
        return StreamingResponse(
            download.content,
            media_type=download.file.content_type,
            headers={
                "Content-Length": str(download.file.size),
                "Content-Disposition": content_disposition(download.file.filename),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    return api

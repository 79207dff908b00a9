"""`/projects/{project_id}/messages`: post to a project's thread, read it a page at a time."""

# No `from __future__ import annotations`: see projects.py (a page dependency from settings).
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from mmgen.platform.pagination import CursorPage, PageRequest, pagination
from mmgen.projects.entrypoints.api.dependencies import CurrentCaller, Service
from mmgen.projects.entrypoints.api.schemas import MessageIn, MessageOut, page_out
from mmgen.projects.settings import ProjectsSettings


def router(settings: ProjectsSettings) -> APIRouter:
    api = APIRouter(prefix="/projects/{project_id}/messages", tags=["messages"])
    MessagesPage = Annotated[
        PageRequest,
        Depends(
            pagination(
                default_limit=settings.messages_page_default,
                max_limit=settings.messages_page_max,
            )
        ),
    ]

    @api.post(
        "", name="post_message", status_code=status.HTTP_201_CREATED, response_model=MessageOut
    )
    async def post_message(
        project_id: uuid.UUID, body: MessageIn, caller: CurrentCaller, svc: Service
    ) -> MessageOut:
        """Post a message, sealed under the author's key."""
        view = await svc.messages.post(caller, str(project_id), body.text)
        return MessageOut.of(view)

    @api.get("", name="list_messages", response_model=CursorPage[MessageOut])
    async def list_messages(
        project_id: uuid.UUID, caller: CurrentCaller, svc: Service, page: MessagesPage
    ) -> CursorPage[MessageOut]:
        """Newest first; erased messages read `{text: null, erased: true}` (a recorded read)."""
        read = await svc.messages.list(
            caller, str(project_id), limit=page.limit, position=page.position
        )
        return page_out(read.value, MessageOut.of)

    return api

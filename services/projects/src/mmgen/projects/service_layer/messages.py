"""Message use cases: post to a project's thread, read it a page at a time (newest first).

A message's text is sealed under its **author's** key (`subject:<author>`), wherever it was
posted: erasing the author makes their messages read as erased for everyone, and leaves
everyone else's intact. Each page read is recorded with the authors whose texts it returned.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Sequence
from typing import Any

from mmgen.events.erased import is_erased
from mmgen.events.errors import OwnerErasedError
from mmgen.events.ids import new_event_id
from mmgen.events.mapper import NewEvent
from mmgen.events.repository import EventSourcedRepository
from mmgen.projects.adapters.personal import PersonalReader
from mmgen.projects.adapters.ports import MessageRow, MessagesIndex, ProjectRow
from mmgen.projects.adapters.projection import ProjectsProjector
from mmgen.projects.domain.access import Operation
from mmgen.projects.domain.errors import (
    ProjectAnonymizedError,
    ProjectClosedError,
    SubjectErasedError,
)
from mmgen.projects.domain.events import MESSAGE_POSTED, MessagePosted, MessageText
from mmgen.projects.domain.model import CLOSED_STATUSES
from mmgen.projects.service_layer.caller import Caller
from mmgen.projects.service_layer.gate import AccessGate
from mmgen.projects.service_layer.paging import before_number, numbers_below
from mmgen.projects.service_layer.views import MessageView, Page, Read


def ensure_open_for_content(row: ProjectRow) -> None:
    """Messages and files are added only while the project runs and keeps its texts."""
    if row.anonymized:
        raise ProjectAnonymizedError()
    if row.status in CLOSED_STATUSES:
        raise ProjectClosedError(row.status)


class MessageUseCases:
    def __init__(
        self,
        repo: EventSourcedRepository,
        gate: AccessGate,
        messages: MessagesIndex,
        projector: ProjectsProjector,
        *,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.repo = repo
        self.gate = gate
        self.messages = messages
        self.projector = projector
        self.reader = PersonalReader(repo.mapper, repo.store)
        self.new_id = new_id

    async def post(self, caller: Caller, project_id: str, text: str) -> MessageView:
        admitted = await self.gate.enter(caller, project_id, Operation.post_message)
        ensure_open_for_content(admitted.row)
        number = await self.messages.next_number(project_id)
        message_id = self.new_id()
        try:
            (stored,) = await self.repo.append(
                f"message:{message_id}",
                0,
                [
                    NewEvent(
                        MessagePosted(project_id=project_id, message_id=message_id, number=number),
                        personal=MessageText(text=text),
                        subject_id=caller.actor_id,
                        actor=caller.actor(),
                        purpose=str(admitted.purpose),
                        resource_id=message_id,
                    )
                ],
            )
        except OwnerErasedError:
            raise SubjectErasedError() from None
        await self.projector.apply(stored.envelope)
        return MessageView(
            message_id=message_id,
            project_id=project_id,
            number=number,
            author_id=caller.actor_id,
            posted_at=stored.occurred_at,
            text=text,
        )

    async def list(
        self,
        caller: Caller,
        project_id: str,
        *,
        limit: int,
        position: dict[str, Any] | None = None,
    ) -> Read[Page[MessageView]]:
        """One page of the thread, newest first; erased messages read as erased.

        The access event is appended while the page is read (both must succeed before the
        page is returned), so auditing adds no round trip to the read's latency. It names the
        page's slots (`records`), not its authors: a page mixes people, and who wrote what is
        in the thread itself.
        """
        admitted = await self.gate.enter(caller, project_id, Operation.read_messages)
        last = await self.messages.last_number(project_id)
        before = before_number(position, last=last)
        numbers = numbers_below(before, limit)
        access, items = await asyncio.gather(
            self.gate.record_read(
                caller,
                admitted,
                resource_type="project_messages",
                resource_id=project_id,
                categories=("communication",),
                fields=("text",),
                subject_ids=(),
                records=len(numbers),
            ),
            self._page(project_id, numbers),
        )
        lowest = numbers[-1] if numbers else 1
        return Read(Page(items, {"before": lowest} if lowest > 1 else None), access)

    async def _page(self, project_id: str, numbers: Sequence[int]) -> builtins.list[MessageView]:
        rows = await self.messages.window(project_id, numbers)
        return [await self._view(row) for row in rows]

    async def _view(self, row: MessageRow) -> MessageView:
        text: str | None = None
        if not row.erased and row.pii is not None:
            personal = await self.reader.open(
                event_type=MESSAGE_POSTED,
                schema_version=row.schema_version,
                event_id=row.event_id,
                pii=row.pii,
            )
            text = None if is_erased(personal) else personal.text
        return MessageView(
            message_id=row.message_id,
            project_id=row.project_id,
            number=row.number,
            author_id=row.author_id if text is not None else None,
            posted_at=row.posted_at,
            text=text,
            erased=text is None,
        )

"""`CommandPublisher` over retention's own event store: a command is an event retention appends.

`retention.EraseSubject` / `retention.AnonymizeResource` are events of retention's registry,
appended to a stream of their own (`command:<command id>`) with the command id as event id.
The runtime's relay publishes them to `retention.events` (so the audit log records every
order, with no break in `producer_seq`) and, in the same acked round, to `retention.commands`,
where every service obeys them. Appending the same command twice is refused by the store
(same event id, same stream): a repeated step sends nothing new, and the relay never loses
what was appended. Each command carries retention's signature (`data.signature`, over its id,
type, subject and order: `mmgen.runtime.commands`), made with the receipt key published at
`/.well-known/jwks.json`; services obey only commands that verify.
"""

from __future__ import annotations

import logging

from mmgen.auditlog.receipt import ReceiptSigner
from mmgen.events.envelope import Actor
from mmgen.events.errors import ConcurrencyError, DuplicateEventIdError
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData
from mmgen.events.repository import EventSourcedRepository
from mmgen.retention.domain.events import AnonymizeResource, EraseSubject, ResourceRef
from mmgen.retention.domain.records import Command
from mmgen.runtime.commands import sign_command

log = logging.getLogger(__name__)

#: Commands are given by the retention service itself (the request or policy run that caused
#: one is named by its `request_id` and correlation id).
RETENTION_ACTOR = Actor(id="retention", role="service")
LEGAL_COMPLIANCE = "legal_compliance"


def command_stream(command_id: str) -> str:
    return f"command:{command_id}"


class StoreCommandPublisher:
    """Appends each command once; the relay delivers it (at least once, in order per key)."""

    def __init__(self, repository: EventSourcedRepository, signer: ReceiptSigner) -> None:
        self.repository = repository
        self.signer = signer

    async def publish(self, command: Command) -> None:
        data: EventData
        if command.event_type == "retention.EraseSubject":
            data = EraseSubject.model_validate(command.data)
            resource_id = data.subject_id
        else:
            data = AnonymizeResource(
                request_id=str(command.data["request_id"]),
                resource=ResourceRef.model_validate(command.data["resource"]),
            )
            resource_id = f"{data.resource.type}:{data.resource.id}"
        signature = sign_command(
            self.signer,
            event_id=command.command_id,
            event_type=command.event_type,
            subject_id=command.subject_id,
            data=data.model_dump(mode="json", exclude={"signature"}),
        )
        data = data.model_copy(update={"signature": signature})
        event = NewEvent(
            data,
            subject_id=command.subject_id,
            actor=RETENTION_ACTOR,
            purpose=LEGAL_COMPLIANCE,
            resource_id=resource_id,
            correlation_id=command.correlation_id,
            event_id=command.command_id,
        )
        try:
            await self.repository.append(command_stream(command.command_id), 0, [event])
        except (ConcurrencyError, DuplicateEventIdError):
            log.info("command %s was appended before", command.command_id)

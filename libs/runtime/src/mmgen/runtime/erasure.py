"""The erasure contract: retention's commands in, one answer event out, subject rights served.

Retention publishes `retention.EraseSubject` and `retention.AnonymizeResource` on
`retention.commands` (DESIGN.md). Every service gives the runtime an `ErasureParticipant`;
`ErasureCommands` first checks that retention signed the command (`mmgen.runtime.commands`:
anything else is refused, counted and audited, and nothing is erased), then parses it into an
order, lets the participant carry it out (shred keys, delete or anonymise read models, with the
consumer's transaction for database writes), and appends the service's `SubjectErased` /
`ResourceAnonymized` answer with an event id derived from the command's, so a redelivered
command can never record a second answer.
`subject_rights_router` serves `/internal/subjects/{id}/export|footprint` to service callers;
each export page is itself an audited event naming the caller and the purpose.

The export is paged (`limit`, `cursor` → `next_cursor`) at this level, over the one bounded
package a participant builds (`export_page`): participants stay as they are, and no answer
carries more than `EXPORT_PAGE_MAX` events. The cursor is the position after the last event
handed out (its event id), so events appended meanwhile do not shift the pages.

The participant's work is done before the consumer's transaction, outside it
(`ErasureCommands.prepare`, the inbox subscription's `prepare`): it is the slow part (keys,
read-model rows, file chunks), and a transaction held open across it conflicts with every
append the service makes meanwhile — they all take the sequence counter — and is run again
from the start for as long as they go on (retention, audited on every read of a request,
appends all the time). The transaction then only records the message as processed and appends
the answer. What the participant did stays done, so a second run finds nothing left and would
report zeros: `OutcomeMemo` keeps the first run's counts, keyed by the command, and the answer
reports those. Without `prepare` (a handler called directly), `handle` does the work itself,
with the consumer's session for the participant's writes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from prometheus_client import CollectorRegistry, Counter
from pymongo import ReturnDocument

from mmgen.events.errors import ConcurrencyError, DuplicateEventIdError, EventsError
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import KNOWN_CATEGORIES
from mmgen.events.topics import RETENTION_COMMANDS
from mmgen.platform.auth import Principal, accepts_purposes, require_service
from mmgen.platform.auth.principal import ProcessingPurpose
from mmgen.platform.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mmgen.runtime.commands import CommandRefusedError, CommandVerifier
from mmgen.runtime.contract import (
    CountsByCategory,
    Footprint,
    StandardEvents,
    SubjectErasedData,
    SubjectExport,
    well_formed_id,
)
from mmgen.runtime.trail import AuditTrail, actor_of

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.collection import AsyncCollection

    from mmgen.events.consumer import HandlerContext
    from mmgen.events.envelope import Envelope
    from mmgen.events.repository import EventSourcedRepository

log = logging.getLogger(__name__)

ERASE_SUBJECT = "retention.EraseSubject"
ANONYMIZE_RESOURCE = "retention.AnonymizeResource"
COMMAND_TYPES = frozenset({ERASE_SUBJECT, ANONYMIZE_RESOURCE})
#: The services whose tokens may read subject exports and footprints.
SUBJECT_RIGHTS_CALLERS = ("retention", "admin-cli")
#: Events one export page carries when the caller names no `limit`, and at most.
EXPORT_PAGE_DEFAULT = 500
EXPORT_PAGE_MAX = 2_000
_ANSWER_NAMESPACE = uuid.UUID("6f1d7c55-3c1e-4f7e-9a57-3f0b1f1c2e11")


class CommandInvalidError(EventsError):
    """A retention command that names no valid subject or resource: nothing is done."""


@dataclass(frozen=True)
class EraseOrder:
    """`retention.EraseSubject`, parsed. Write read-model changes with `session` when given."""

    request_id: str
    subject_id: str
    categories_held: frozenset[str]
    command: Envelope
    session: AsyncClientSession | None = None


@dataclass(frozen=True)
class AnonymizeOrder:
    """`retention.AnonymizeResource`, parsed."""

    request_id: str
    resource_type: str
    resource_id: str
    command: Envelope
    session: AsyncClientSession | None = None


@dataclass
class ErasureOutcome:
    """What a participant did for one `EraseOrder` (counts per category, no contents)."""

    keys_shredded: int = 0
    records_deleted: CountsByCategory = field(default_factory=dict)
    records_anonymized: CountsByCategory = field(default_factory=dict)
    categories_held: list[str] = field(default_factory=list)


@dataclass
class AnonymizationOutcome:
    keys_shredded: int = 0
    records_anonymized: CountsByCategory = field(default_factory=dict)


class ErasureParticipant(Protocol):
    """What each service implements of the erasure contract."""

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome: ...

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome: ...

    async def export(self, subject_id: str) -> SubjectExport: ...

    async def footprint(self, subject_id: str) -> Footprint: ...


def parse_erase(command: Envelope, session: AsyncClientSession | None = None) -> EraseOrder:
    data = command.data
    subject = well_formed_id(data.get("subject_id") or command.subject_id)
    if subject is None:
        raise CommandInvalidError(f"EraseSubject {command.event_id} names no subject id")
    held = data.get("categories_held") or []
    if not isinstance(held, list) or not all(isinstance(c, str) for c in held):
        raise CommandInvalidError(f"EraseSubject {command.event_id}: categories_held not a list")
    unknown = set(held) - KNOWN_CATEGORIES
    if unknown:
        raise CommandInvalidError(f"EraseSubject {command.event_id}: unknown {sorted(unknown)}")
    return EraseOrder(
        request_id=str(data.get("request_id") or command.event_id)[:200],
        subject_id=subject,
        categories_held=frozenset(held),
        command=command,
        session=session,
    )


def parse_anonymize(command: Envelope, session: AsyncClientSession | None = None) -> AnonymizeOrder:
    resource = command.data.get("resource")
    if not isinstance(resource, dict):
        raise CommandInvalidError(f"AnonymizeResource {command.event_id} names no resource")
    kind, ident = str(resource.get("type") or ""), str(resource.get("id") or "")
    if not kind or len(kind) > 40 or not ident or len(ident) > 200:
        raise CommandInvalidError(f"AnonymizeResource {command.event_id}: bad resource {resource}")
    return AnonymizeOrder(
        request_id=str(command.data.get("request_id") or command.event_id)[:200],
        resource_type=kind,
        resource_id=ident,
        command=command,
        session=session,
    )


class OutcomeMemo(Protocol):
    """The counts first reported for a command (kept outside any transaction)."""

    async def remember(
        self, command_id: str, outcome: dict[str, Any], *, prepared: bool = False
    ) -> dict[str, Any]:
        """Keep `outcome` if none is kept for `command_id` yet; return the one kept.
        `prepared`: the work was done outside any transaction (it cannot be rolled back)."""
        ...

    async def recall(self, command_id: str) -> dict[str, Any] | None:
        """The outcome of work done outside any transaction for `command_id`, if kept: an
        outcome kept from inside a transaction may describe writes rolled back since."""
        ...


class InMemoryOutcomeMemo:
    def __init__(self) -> None:
        self.outcomes: dict[str, tuple[dict[str, Any], bool]] = {}

    async def remember(
        self, command_id: str, outcome: dict[str, Any], *, prepared: bool = False
    ) -> dict[str, Any]:
        return self.outcomes.setdefault(command_id, (outcome, prepared))[0]

    async def recall(self, command_id: str) -> dict[str, Any] | None:
        outcome, prepared = self.outcomes.get(command_id, ({}, False))
        return outcome if prepared else None


class MongoOutcomeMemo:
    """One document per command, written without the consumer's session (it must survive
    that transaction's rollback)."""

    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self.collection = collection

    async def remember(
        self, command_id: str, outcome: dict[str, Any], *, prepared: bool = False
    ) -> dict[str, Any]:
        doc = await self.collection.find_one_and_update(
            {"_id": command_id},
            {
                "$setOnInsert": {
                    "outcome": outcome,
                    "prepared": prepared,
                    "at": datetime.now(UTC),
                }
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # an upsert returning the document after it
        kept: dict[str, Any] = doc["outcome"]
        return kept

    async def recall(self, command_id: str) -> dict[str, Any] | None:
        doc = await self.collection.find_one({"_id": command_id, "prepared": True})
        return None if doc is None else dict(doc["outcome"])


def answer_id(command: Envelope, service: str) -> str:
    """`service`'s answer's event id: derived from the command, so a redelivery cannot answer
    twice — and from the service, since every service answers the same command and an event
    id is the idempotency key everywhere (consumers and the audit log keep one per id)."""
    return str(uuid.uuid5(_ANSWER_NAMESPACE, f"{service}:{command.event_id}"))


def refusal_id(command: Envelope, service: str) -> str:
    """The event id of `service`'s audit record refusing `command` (one per command, however
    often it is delivered)."""
    return str(uuid.uuid5(_ANSWER_NAMESPACE, f"{service}:refused:{command.event_id}"))


def refused_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "retention_commands_refused",
        "Commands on retention.commands not obeyed (unsigned, wrongly signed, altered)",
        ["reason"],
        registry=registry,
    )


class ErasureCommands:
    """Inbox handlers of `retention.commands`: order → participant → answer event."""

    def __init__(
        self,
        participant: ErasureParticipant,
        repository: EventSourcedRepository,
        events: StandardEvents,
        verifier: CommandVerifier,
        memo: OutcomeMemo | None = None,
        refused: Counter | None = None,
    ) -> None:
        self.participant = participant
        self.repository = repository
        self.events = events
        self.verifier = verifier
        self.memo: OutcomeMemo = memo or InMemoryOutcomeMemo()
        #: `retention_commands_refused_total{reason}`: commands not obeyed, by reason.
        self.refused = refused or refused_counter(CollectorRegistry(auto_describe=True))

    async def prepare(self, command: Envelope) -> None:
        """Carry out a verified, valid command's erasure or anonymisation and keep its counts,
        before the consumer's transaction (no session): `handle` then only answers. A command
        refused or invalid is left to `handle`, which records why."""
        try:
            await self.verifier.verify(command)
            if command.event_type == ERASE_SUBJECT:
                await self._erased(parse_erase(command))
            elif command.event_type == ANONYMIZE_RESOURCE:
                await self._anonymized(parse_anonymize(command))
        except (CommandRefusedError, CommandInvalidError):
            return

    async def handle(self, command: Envelope, ctx: HandlerContext | None = None) -> None:
        session = ctx.session if ctx is not None else None
        try:
            await self.verifier.verify(command)
        except CommandRefusedError as exc:
            await self.refuse(command, exc, session)
            return
        try:
            if command.event_type == ERASE_SUBJECT:
                await self.erase(parse_erase(command, session))
            elif command.event_type == ANONYMIZE_RESOURCE:
                await self.anonymize(parse_anonymize(command, session))
        except CommandInvalidError:
            log.exception("retention command refused; nothing erased")

    async def refuse(
        self, command: Envelope, refusal: CommandRefusedError, session: AsyncClientSession | None
    ) -> None:
        """Count and audit a command that is not retention's, as signed; nothing is erased.

        The message is then done with (acknowledged, not dead-lettered): parked, it could only
        be replayed into the same refusal. A genuine command refused — signed by a key this
        service cannot see yet — is not lost: retention orders again every erasure a service
        has not acknowledged (`acknowledgement_timeout_seconds`), under a new command id.
        """
        self.refused.labels(refusal.reason).inc()
        log.warning(
            "retention command %s refused (%s); nothing erased",
            command.event_id,
            refusal,
            extra={"event_type": command.event_type, "reason": refusal.reason},
        )
        subject = well_formed_id(command.data.get("subject_id") or command.subject_id)
        denial = self.events.AccessDenied(
            code="command_refused",
            status=401,
            method="CONSUME",
            route=RETENTION_COMMANDS,
            target_type="subject" if subject else None,
            target_id=subject,
            reason=refusal.reason,
        )
        event = NewEvent(
            denial,
            subject_id=subject,
            actor=None,
            purpose=ProcessingPurpose.legal_compliance.value,
            resource_id=f"CONSUME {RETENTION_COMMANDS}",
            causation_id=command.event_id,
            event_id=refusal_id(command, self.events.service),
        )
        stream = f"refusal:{command.event_id}"
        if session is not None and await self.repository.store.get(event.event_id) is not None:
            return
        try:
            await self.repository.append(stream, 0, [event], session=session)
        except (ConcurrencyError, DuplicateEventIdError):
            if session is not None:
                raise  # the transaction is spoilt: the consumer retries, then finds the record
            log.info("refusal of command %s was recorded before", command.event_id)

    async def _kept(
        self, order: EraseOrder | AnonymizeOrder, work: Callable[[], Awaitable[Any]]
    ) -> dict[str, Any]:
        """The counts of the order's work: kept from `prepare` (done, outside any
        transaction), else `work()` done now and its counts kept (the first run's)."""
        command_id = order.command.event_id
        kept = await self.memo.recall(command_id)
        if kept is None:
            done = await work()
            prepared = order.session is None
            kept = await self.memo.remember(command_id, asdict(done), prepared=prepared)
        return kept

    async def _erased(self, order: EraseOrder) -> ErasureOutcome:
        return ErasureOutcome(
            **await self._kept(order, lambda: self.participant.erase_subject(order))
        )

    async def _anonymized(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        return AnonymizationOutcome(
            **await self._kept(order, lambda: self.participant.anonymize_resource(order))
        )

    async def erase(self, order: EraseOrder) -> SubjectErasedData:
        outcome = await self._erased(order)
        answer = self.events.SubjectErased(
            request_id=order.request_id,
            subject_id=order.subject_id,
            keys_shredded=outcome.keys_shredded,
            records_deleted=outcome.records_deleted,
            records_anonymized=outcome.records_anonymized,
            categories_held=sorted(outcome.categories_held),
        )
        await self._answer(
            order.command, answer, subject_id=order.subject_id, session=order.session
        )
        log.info("subject erased", extra={"request_id": order.request_id})
        return answer

    async def anonymize(self, order: AnonymizeOrder) -> None:
        outcome = await self._anonymized(order)
        answer = self.events.ResourceAnonymized(
            request_id=order.request_id,
            resource_type=order.resource_type,
            resource_id=order.resource_id,
            keys_shredded=outcome.keys_shredded,
            records_anonymized=outcome.records_anonymized,
        )
        await self._answer(order.command, answer, subject_id=None, session=order.session)

    async def _answer(
        self,
        command: Envelope,
        data: Any,
        *,
        subject_id: str | None,
        session: AsyncClientSession | None,
    ) -> None:
        """Append the answer — in the consumer's transaction when there is one, so the
        participant's read-model changes and the answer commit together or not at all."""
        event_id = answer_id(command, self.events.service)
        if session is not None and await self.repository.store.get(event_id) is not None:
            log.info("retention command %s was answered before", command.event_id)
            return
        event = NewEvent(
            data,
            subject_id=subject_id,
            actor=command.actor,
            purpose=command.purpose or ProcessingPurpose.legal_compliance.value,
            resource_id=subject_id or f"{data.resource_type}:{data.resource_id}",
            causation_id=command.event_id,
            correlation_id=command.correlation_id or command.event_id,
            event_id=event_id,
        )
        try:
            await self.repository.append(f"erasure:{command.event_id}", 0, [event], session=session)
        except (ConcurrencyError, DuplicateEventIdError):
            if session is not None:
                raise  # the transaction is spoilt: the consumer retries, then finds the answer
            log.info("retention command %s was answered before", command.event_id)


def export_page(package: SubjectExport, *, limit: int, cursor: str | None) -> SubjectExport:
    """The page of `package` that starts after `cursor` and holds at most `limit` events.

    The current records come on the first page only (they are one snapshot, not a list to
    page); every page repeats the header fields. A cursor this package cannot place — not
    one this route issued, or naming an event no longer held — is an `InvalidCursorError`.
    """
    start = 0
    if cursor is not None:
        after = decode_cursor(cursor).get("after")
        ids = [event.event_id for event in package.events]
        if not isinstance(after, str) or after not in ids:
            raise InvalidCursorError("the cursor names no event of this export")
        start = ids.index(after) + 1
    events = package.events[start : start + limit]
    more = start + limit < len(package.events)
    return package.model_copy(
        update={
            "records": package.records if cursor is None else {},
            "events": events,
            "next_cursor": encode_cursor({"after": events[-1].event_id}) if more else None,
        }
    )


SubjectRightsCaller = Annotated[Principal, Depends(require_service(*SUBJECT_RIGHTS_CALLERS))]
#: An export answers a subject's request of access (GDPR Art. 15): a legal obligation, so
#: `legal_compliance` is the purpose it is recorded under, declared or not.
ExportPurpose = Annotated[
    ProcessingPurpose | None, Depends(accepts_purposes(ProcessingPurpose.legal_compliance))
]


def subject_rights_router(participant: ErasureParticipant, trail: AuditTrail) -> APIRouter:
    """`/internal/subjects/{id}/export|footprint` for service callers (retention, admin-cli)."""
    router = APIRouter(prefix="/internal/subjects", tags=["subject rights"])

    @router.get("/{subject_id}/export", name="export_subject", response_model=SubjectExport)
    async def export_subject(
        subject_id: UUID,
        caller: SubjectRightsCaller,
        declared: ExportPurpose,
        limit: Annotated[int, Query(ge=1, le=EXPORT_PAGE_MAX)] = EXPORT_PAGE_DEFAULT,
        cursor: Annotated[str | None, Query()] = None,
    ) -> SubjectExport:
        """Everything held on the subject, decrypted, one page of events at a time: follow
        `next_cursor` until it is null (the current records come on the first page).

        Every page is audited on its own, with what it carried: each is a separate disclosure
        to the caller, who may stop after any page, and the route keeps no state between
        pages that could hold one record back until an export is "complete".
        """
        purpose = (declared or ProcessingPurpose.legal_compliance).value
        whole = await participant.export(str(subject_id))
        package = export_page(whole, limit=limit, cursor=cursor)
        await trail.exported(
            actor_of(caller),
            subject_id=str(subject_id),
            purpose=purpose,
            records=len(package.records),
            events=len(package.events),
            categories=sorted({c for e in package.events for c in e.categories}),
        )
        return package

    @router.get("/{subject_id}/footprint", name="subject_footprint", response_model=Footprint)
    async def subject_footprint(subject_id: UUID, caller: SubjectRightsCaller) -> Footprint:
        """Per category: records held and personal values still readable (counts only)."""
        del caller
        return await participant.footprint(str(subject_id))

    return router


KeyAdministrator = Annotated[Principal, Depends(require_service("admin-cli"))]


def keys_router(keystore: Any) -> APIRouter:
    """`POST /internal/keys/rewrap`: re-wrap every live data key under the current master key.

    Resumable: keys already under the current master key are skipped, so an interrupted run
    is simply started again. Once it reports zero left, the retired key can be removed.
    """
    router = APIRouter(prefix="/internal/keys", tags=["keys"])

    @router.post("/rewrap", name="rewrap_data_keys")
    async def rewrap_data_keys(caller: KeyAdministrator) -> dict[str, Any]:
        """Re-wrap every data key still under a retired master key (admin-cli only)."""
        del caller
        count = await keystore.rotate_master_key()
        return {"rewrapped": count, "master_key_id": keystore.keyring.current.key_id}

    return router

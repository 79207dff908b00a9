"""HTTP edge of the audit log: `/audit/*` routes (compliance role, declared purpose) and denials.

Routes are thin: parse, authorise (platform dependencies), call `AuditQueries`, shape JSON.
Domain errors become problem+json through `AUDIT_PROBLEMS`, which the app registers with its
own problem map. Every refusal (401/403) reaches the app's `AccessDenialRecorder`;
`AuditDenialRecorder` appends the refusals of `/audit/*` to the log itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from mmgen.consent.audit.domain import (
    AUDIT_PRODUCER,
    DENY_EVENT_TYPE,
    AuditCheckpointNotFoundError,
    AuditEntryNotFoundError,
    AuditRangeInvalidError,
    AuditRangeTooLargeError,
    AuditVerificationBusyError,
)
from mmgen.consent.audit.service import REPORT_PAGE, REPORT_PAGE_MAX
from mmgen.consent.audit.streaming import (
    RECHECK_SECONDS,
    AuditStreamLimitError,
    StreamSlots,
    StreamWatch,
)
from mmgen.events.ids import new_event_id
from mmgen.platform import ProblemSpec
from mmgen.platform.auth import (
    Principal,
    ProcessingPurpose,
    accepts_purposes,
    require_roles,
    require_service,
)
from mmgen.platform.metrics import route_template
from mmgen.platform.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mmgen.runtime.trail import actor_of

if TYPE_CHECKING:
    from mmgen.consent.audit.service import AuditQueries
    from mmgen.consent.audit.store import MongoAuditStore
    from mmgen.platform.auth.denylist import SubjectDenylist
    from mmgen.platform.denials import AccessDenialRecorder, DenialReason
    from mmgen.runtime.trail import AuditTrail

MAX_ID = 256
MAX_PAGE = 500
STREAM_BATCH = 500
KEEPALIVE_S = 15.0


_NOT_FOUND = ProblemSpec(404, title="Not in the audit log", slug="audit-not-found")
AUDIT_PROBLEMS: dict[type[Exception], ProblemSpec] = {
    AuditEntryNotFoundError: _NOT_FOUND,
    AuditCheckpointNotFoundError: _NOT_FOUND,
    AuditRangeInvalidError: ProblemSpec(
        400, title="Outside the audit log", slug="audit-range-invalid"
    ),
    AuditRangeTooLargeError: ProblemSpec(
        422,
        title="Verification range too large",
        slug="audit-verify-range-too-large",
        extensions=lambda exc: {"max_entries": exc.cap, "requested_entries": exc.requested},
    ),
    AuditVerificationBusyError: ProblemSpec(
        429, title="A verification is running", slug="audit-verify-busy"
    ),
    AuditStreamLimitError: ProblemSpec(
        429, title="Too many open audit streams", slug="audit-stream-limit"
    ),
}
"""How the audit log's errors render (registered by the app beside its own)."""


class AppendSignal:
    """Wakes live tails when entries are appended (in-process; tails also poll)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)


Compliance = Annotated[Principal, Depends(require_roles("compliance"))]
#: Signed heads hold sizes, hashes and signatures only (no entry, no id): compliance reads
#: them, and so do services with a service token — retention puts one in every erasure
#: receipt it signs, which the receipt's verifier then checks against the pinned log key.
HeadReader = Annotated[Principal, Depends(require_roles("compliance", "service"))]
#: The audit log is read to prove the platform kept its promises: `legal_compliance` only
#: (service tokens reading heads declare none).
AuditPurpose = Annotated[
    ProcessingPurpose | None, Depends(accepts_purposes(ProcessingPurpose.legal_compliance))
]
IdQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_ID)]
#: Answers to erasure orders are looked up by retention alone.
ErasureAnswerReader = Annotated[Principal, Depends(require_service("retention"))]
#: The longest an erasure-answer lookup waits for its entry, and how often it looks again when
#: the append is made by another replica (this one's appends wake it at once).
ANSWER_WAIT_MAX_S = 5.0
ANSWER_POLL_S = 0.5


def _seq_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    position = decode_cursor(cursor)
    seq = position.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidCursorError("the cursor is not one this service issued")
    return seq


def build_router(
    queries: AuditQueries,
    signal: AppendSignal,
    public_key: Callable[[], str],
    store: MongoAuditStore,
    *,
    slots: StreamSlots | None = None,
    denylist: SubjectDenylist | None = None,
    recheck_seconds: float = RECHECK_SECONDS,
    trail: AuditTrail | None = None,
) -> APIRouter:
    """The `/audit` router over one set of queries (one per app).

    `slots` bounds open streams per principal; `denylist` (the runtime's token revocations)
    is asked every `recheck_seconds` whether a streaming principal's account still stands.
    `trail` (the runtime's) records every compliance read as a `DataAccessed` event of the
    service — actor, declared purpose, route — which reaches the log through the projector
    like any other. Only opening a stream is recorded, not each entry it sends, so reading
    those records never records more reads than requests were made."""
    stream_slots = slots if slots is not None else StreamSlots()

    async def accessed(
        request: Request,
        who: Principal,
        purpose: object,
        *,
        subject_id: str | None = None,
        records: int = 1,
    ) -> None:
        if trail is None:
            return
        route = str(route_template(request.scope))
        await trail.accessed(
            actor_of(who),
            route=route,
            resource_type="audit_log",
            resource_id=route,
            categories=("usage",),
            purpose=str(purpose) if purpose else None,
            subject_id=subject_id,
            records=records,
        )

    router = APIRouter(prefix="/audit", tags=["audit"])

    @router.get("/entries", name="audit_list_entries")
    async def list_entries(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        subject_id: IdQuery = None,
        actor_id: IdQuery = None,
        action: IdQuery = None,
        event_type: IdQuery = None,
        producer: IdQuery = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> dict[str, Any]:
        """Entries in seq order matching every filter; `since` inclusive, `until` exclusive
        (on `recorded_at`). A page may hold fewer than `limit` items: follow `next_cursor`."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise AuditRangeInvalidError(f"{name} needs a time zone (e.g. Z)")
        filters = {
            "subject_id": subject_id,
            "actor_id": actor_id,
            "action": action,
            "event_type": event_type,
            "producer": producer,
        }
        page = await queries.entries(
            filters, since=since, until=until, start=_seq_cursor(cursor), limit=limit
        )
        next_cursor = None if page.next_seq is None else encode_cursor({"seq": page.next_seq})
        await accessed(request, who, purpose, subject_id=subject_id, records=len(page.items))
        return {"items": page.items, "next_cursor": next_cursor}

    @router.get("/entries/{seq}", name="audit_get_entry")
    async def get_entry(
        request: Request, who: Compliance, purpose: AuditPurpose, seq: Annotated[int, Path(ge=0)]
    ) -> dict[str, Any]:
        entry = await queries.entry(seq)
        await accessed(request, who, purpose)
        return entry

    @router.get("/erasure-answers/{event_id}", name="audit_erasure_answer")
    async def erasure_answer(
        who: ErasureAnswerReader,
        purpose: AuditPurpose,
        event_id: Annotated[str, Path(min_length=1, max_length=MAX_ID)],
        wait: Annotated[float, Query(ge=0, le=ANSWER_WAIT_MAX_S)] = 0,
    ) -> dict[str, Any]:
        """The entry of a service's answer to an erasure order (`<service>.SubjectErased`, by
        its event id), for retention only: it reads the answer on the service's events topic
        and takes the entry's `seq` here, instead of waiting for `audit.log` to bring the
        entry, so an erasure's acknowledgement waits for the log to take the answer in and
        not for the whole feed after it. `wait`: seconds to wait for the entry to be appended.
        404 when the log holds no such answer. Not recorded as an access: retention reads the
        same entries on `audit.log`, and no other entry is handed out here."""
        del who, purpose
        deadline = time.monotonic() + wait
        while (entry := await queries.erasure_answer(event_id)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AuditEntryNotFoundError(f"the log holds no erasure answer {event_id!r}")
            await signal.wait(min(left, ANSWER_POLL_S))  # woken by an append here, else polls
        return entry

    @router.get("/stream", name="audit_stream", response_class=StreamingResponse)
    async def stream(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
        from_seq: Annotated[int | None, Query(alias="from", ge=0)] = None,
        limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ) -> StreamingResponse:
        """Server-sent events, one `entry` event per entry (`id` = seq). Resumes after
        `Last-Event-ID`; `from` starts at a seq; without both, from the current end (live
        tail). `limit` ends the stream after that many entries; so do the token's expiry and
        the account's revocation (seen within `recheck_seconds`)."""
        if last_event_id is not None:
            # ASCII digits only: str.isdigit() also accepts e.g. "²", which int() refuses.
            if not (last_event_id.isascii() and last_event_id.isdigit()):
                raise AuditRangeInvalidError("Last-Event-ID must be a seq (decimal digits)")
            start = int(last_event_id) + 1
        elif from_seq is not None:
            start = from_seq
        else:
            start = (await store.head()).size
        watch = StreamWatch(who, denylist, recheck_seconds)
        slot = stream_slots.take(who.subject_id)
        try:
            await accessed(request, who, purpose, records=0)
        except BaseException:
            slot.release()
            raise

        async def events() -> AsyncIterator[bytes]:
            seq, sent = start, 0
            try:
                yield b": audit log stream\nretry: 2000\n\n"
                while (limit is None or sent < limit) and await watch.may_continue():
                    size = (await store.head()).size
                    if seq < size:
                        docs = await store.window(seq, min(size, seq + STREAM_BATCH))
                        for doc in docs:
                            if doc["_id"] != seq:
                                break
                            yield f"id: {seq}\nevent: entry\ndata: {doc['e']}\n\n".encode()
                            seq += 1
                            sent += 1
                            if limit is not None and sent >= limit:
                                return
                        continue
                    if await request.is_disconnected():
                        return
                    await signal.wait(watch.wait_bound(1.0))
                    if (await store.head()).size <= seq:
                        yield b": keepalive\n\n"
            finally:
                slot.release()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            # A stream whose body never ran (the client left at once) gives its slot back too.
            background=BackgroundTask(slot.release),
        )

    @router.get("/checkpoints/latest", name="audit_latest_checkpoint")
    async def latest_checkpoint(who: HeadReader, purpose: AuditPurpose) -> dict[str, Any]:
        """The latest signed tree head: `{tree_size, root_hash, timestamp, note}`."""
        record = await queries.checkpoint(None)
        return record.to_json()

    @router.get("/checkpoints/{tree_size}", name="audit_get_checkpoint")
    async def get_checkpoint(
        who: HeadReader, purpose: AuditPurpose, tree_size: Annotated[int, Path(ge=1)]
    ) -> dict[str, Any]:
        record = await queries.checkpoint(tree_size)
        return record.to_json()

    @router.get("/public-key", name="audit_public_key", response_class=PlainTextResponse)
    async def get_public_key() -> PlainTextResponse:
        """The C2SP verifier key of the log's signed heads (public; pin it in the CLI)."""
        return PlainTextResponse(public_key() + "\n")

    @router.get("/proofs/inclusion", name="audit_inclusion_proof")
    async def inclusion_proof(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        seq: Annotated[int, Query(ge=0)],
        tree_size: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """`{leaf_index, tree_size, hashes}`; `tree_size` defaults to the current size."""
        proof = await queries.inclusion(seq, tree_size)
        await accessed(request, who, purpose)
        return proof

    @router.get("/proofs/consistency", name="audit_consistency_proof")
    async def consistency_proof(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        first: Annotated[int, Query(ge=0)],
        second: Annotated[int, Query(ge=0)],
    ) -> dict[str, Any]:
        proof = await queries.consistency(first, second)
        await accessed(request, who, purpose)
        return proof

    @router.get("/verify", name="audit_verify")
    async def verify(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        from_seq: Annotated[int | None, Query(alias="from", ge=0)] = None,
        to_seq: Annotated[int | None, Query(alias="to", ge=0)] = None,
    ) -> dict[str, Any]:
        """Server-side recheck of `[from, to]` (inclusive; default the whole log):
        `{valid, checked, first_bad_seq, reason, code, ...}`. A range longer than
        `CONSENT_AUDIT_VERIFY_MAX_ENTRIES` is a 422; while another verification runs on this
        replica, a 429 (retry later)."""
        outcome = await queries.verify(from_seq, to_seq)
        await accessed(request, who, purpose, records=outcome.result.checked)
        return outcome.to_json()

    @router.get("/subjects/{subject_id}/report", name="audit_subject_report")
    async def subject_report(
        request: Request,
        who: Compliance,
        purpose: AuditPurpose,
        subject_id: Annotated[str, Path(min_length=1, max_length=MAX_ID)],
        limit: Annotated[int, Query(ge=1, le=REPORT_PAGE_MAX)] = REPORT_PAGE,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> dict[str, Any]:
        """The Art. 15 view of one subject, a page at a time: purposes, categories,
        recipients, accesses over the subject's next `limit` entries (counts are the page's;
        follow `next_cursor` until it is null and add them up)."""
        start = _seq_cursor(cursor)
        report = await queries.subject_report(subject_id, start=start, limit=limit)
        next_seq = report.pop("next_seq")
        report["next_cursor"] = None if next_seq is None else encode_cursor({"seq": next_seq})
        await accessed(request, who, purpose, subject_id=subject_id, records=report["entries"])
        return report

    return router


class AuditDenialRecorder:
    """Appends every refusal it is given as a `deny` entry of the log, at once.

    The entry is the audit component's own (producer `audit`, gapless own numbering), so it
    does not depend on the consent event store nor on Kafka. `wrap(other)` sends refusals on
    `/audit/*` here and every other refusal to `other` (e.g. an event-store recorder).
    """

    def __init__(self, store: MongoAuditStore, on_append: Callable[[Any], None]) -> None:
        self.store = store
        self.on_append = on_append

    async def record(
        self, principal: Principal | None, request: Request, reason: DenialReason
    ) -> None:
        path = request.url.path[:MAX_ID]
        subject = request.path_params.get("subject_id") or request.query_params.get("subject_id")
        purpose = getattr(request.state, "purpose", None)
        item: dict[str, Any] = {
            "event_id": new_event_id(),
            "producer": AUDIT_PRODUCER,
            "producer_seq": None,
            "event_type": DENY_EVENT_TYPE,
            "action": "deny",
            "occurred_at": datetime.now(UTC),
            "subject_id": str(subject)[:MAX_ID] if subject else None,
            "actor_id": principal.subject_id if principal is not None else None,
            "actor_role": str(principal.role) if principal is not None else None,
            "purpose": str(purpose) if purpose else None,
            "resource": {"type": "audit_log", "id": path or "/"},
            "categories": ("usage",),
        }
        result = await self.store.append([item])
        self.on_append(result)

    def wrap(self, other: AccessDenialRecorder) -> AccessDenialRecorder:
        mine = self

        class _Routed:
            async def record(
                self, principal: Principal | None, request: Request, reason: DenialReason
            ) -> None:
                if request.url.path.startswith("/audit"):
                    await mine.record(principal, request, reason)
                else:
                    await other.record(principal, request, reason)

        return _Routed()


__all__ = ["AUDIT_PROBLEMS", "AppendSignal", "AuditDenialRecorder", "build_router"]

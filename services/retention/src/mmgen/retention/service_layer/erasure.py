"""The erasure coordinator: orders an erasure, reads the answers back, checks, concludes.

1. `start`: `retention.EraseSubject` to every service (`ServiceDirectory.services()`), with
   the categories the subject's active legal holds keep as `categories_held`.
2. Each service answers with `<service>.SubjectErased`: its data reaches `on_report` (from the
   service's events topic), its audit-log entry `on_audit_entries` (from `audit.log`); the two
   are joined by event id, and once both are there the request records the acknowledgement
   with its `audit_seq`. When the data comes first, the entry is also asked of the log by
   event id (`AuditLogAnswers`, in the background): it is handed out the moment the log
   takes the answer in, where the feed brings it only after publishing, the broker and the
   feed's in-order apply — whichever comes first is recorded, the other changes nothing.
3. `advance`: reads the footprint of every acknowledged service and assesses the request
   (`progress.assess_erasure`): `verified` only when every service acknowledged and every
   footprint shows zero readable personal data outside the held categories;
   a footprint found clean for an order is not asked again for that order (the service
   shredded the subject's key and records nothing new on them: clean stays clean), so each
   round after an acknowledgement asks only the services not yet found clean, all at once;
   when rounds wait in a queue (`advance_later`), each service's footprint is asked the
   moment its acknowledgement is recorded and the round takes that answer;
   `partially_completed` when the same holds but categories are held. The per-service states
   (pending, to_retry, acknowledged, residual, clean) are stored on the request's view.
4. `retry_stalled`: a service that has not acknowledged (or still shows data) past the bound
   gets the order again, as a new attempt, up to `max_attempts`.
5. `on_hold_released`: when a hold of the subject ends, the held part is ordered erased; the
   request goes back in progress and on to `verified`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mmgen.retention.domain.contract import AuditRecord, SubjectErasedReport
from mmgen.retention.domain.errors import (
    IllegalTransitionError,
    PrivacyRequestNotFoundError,
    ServiceUnreachableError,
)
from mmgen.retention.domain.events import AcknowledgementData, ErasureOrdered, HeldCategoryData
from mmgen.retention.domain.holds import held_categories
from mmgen.retention.domain.progress import (
    ErasureProgress,
    ServiceState,
    acknowledgement_counts,
    assess_erasure,
)
from mmgen.retention.domain.records import Command, Evidence
from mmgen.retention.domain.requests import PrivacyRequest, RequestStatus
from mmgen.retention.service_layer.ports import (
    AuditLogAnswers,
    Clock,
    CommandPublisher,
    EvidenceStore,
    HoldViews,
    RequestViews,
    ServiceDirectory,
)
from mmgen.retention.service_layer.requests import RequestBook
from mmgen.runtime.contract import Footprint

log = logging.getLogger(__name__)

#: Orders whose clean footprints a coordinator keeps at most (the oldest are forgotten and
#: simply asked again).
MAX_ORDERS_REMEMBERED = 1_000
#: Answers a coordinator remembers having recorded (the oldest are forgotten: a late copy of
#: one is then recorded again, which changes nothing).
MAX_ANSWERS_REMEMBERED = 10_000


def erase_command(request: PrivacyRequest, order: ErasureOrdered) -> Command:
    """The `retention.EraseSubject` of an order (same order → same command id)."""
    return Command(
        event_type="retention.EraseSubject",
        command_id=order.command_id,
        subject_id=request.subject_id,
        data={
            "request_id": request.request_id,
            "subject_id": request.subject_id,
            "categories_held": sorted({h.category for h in order.categories_held}),
        },
        correlation_id=request.request_id,
    )


def _acknowledgement(evidence: Evidence) -> AcknowledgementData:
    report = evidence.report
    assert report is not None and evidence.audit_seq is not None
    return AcknowledgementData(
        service=evidence.service,
        event_id=evidence.event_id,
        command_id=report.command_id,
        audit_seq=evidence.audit_seq,
        keys_shredded=report.keys_shredded,
        records_deleted=dict(report.records_deleted),
        records_anonymized=dict(report.records_anonymized),
        categories_held=sorted(set(report.categories_held)),
        acknowledged_at=report.occurred_at,
    )


class ErasureCoordinator:
    def __init__(
        self,
        *,
        book: RequestBook,
        views: RequestViews,
        holds: HoldViews,
        evidence: EvidenceStore,
        publisher: CommandPublisher,
        directory: ServiceDirectory,
        clock: Clock,
        ack_timeout: timedelta,
        max_attempts: int = 10,
        advance_later: Callable[[str], None] | None = None,
        answers: AuditLogAnswers | None = None,
    ) -> None:
        self.book = book
        self.views = views
        self.holds = holds
        self.evidence = evidence
        self.publisher = publisher
        self.directory = directory
        self.clock = clock
        self.ack_timeout = ack_timeout
        self.max_attempts = max_attempts
        #: Where an acknowledged request goes to be assessed (footprints over HTTP) outside the
        #: caller — a consumer's transaction must not wait on other services; None: at once.
        self.advance_later = advance_later
        #: (request, order's command) → the footprints found clean for that order.
        self._clean: dict[tuple[str, str], dict[str, Footprint]] = {}
        #: (request, order's command, service) → its footprint, asked the moment its answer
        #: was recorded while the assessment waits in the queue: a slow service being read
        #: then does not hold up reading the others that answer meanwhile.
        self._asked: dict[tuple[str, str, str], asyncio.Task[Footprint | None]] = {}
        #: Where an answer's audit-log entry is asked for by event id (None: the feed only).
        self.answers = answers
        #: event id → its lookup in flight (one per answer).
        self._looking: dict[str, asyncio.Task[None]] = {}
        #: request → answers waiting to be recorded on it, and the recording under way.
        self._waiting: dict[str, list[Evidence]] = {}
        self._recording: dict[str, asyncio.Future[None]] = {}
        #: Event ids of answers recorded (the newest): the route that brings one second
        #: (usually the feed, after the lookup) does not change the request again.
        self._recorded: dict[str, None] = {}

    async def _held(self, subject_id: str) -> list[HeldCategoryData]:
        holds = (await self.holds.of_subjects([subject_id])).get(subject_id, [])
        return held_categories(holds, self.clock.now())

    async def _order(
        self, request_id: str, reason: str, *, first: bool = False
    ) -> ErasureOrdered | None:
        """Order the erasure (again); `first`: only if the request has no order yet — the
        request's own handler and a scheduler pass that read it a moment before may both
        start it, and a second order would have every service erase the subject twice.
        Returns the order sent (None: it had been ordered meanwhile)."""
        held = await self._held((await self.book.load(request_id)).subject_id)
        now = self.clock.now()

        def order(current: PrivacyRequest) -> ErasureOrdered | None:
            if first and current.orders:
                return None
            return current.order_erasure(
                services=self.directory.services(), held=held, reason=reason, now=now
            )

        request, sent = await self.book.change(request_id, order)
        if sent is None:
            log.info("erasure already ordered", extra={"request_id": request_id})
            return None
        await self.publisher.publish(erase_command(request, sent))
        log.info(
            "erasure ordered",
            extra={"request_id": request_id, "attempt": sent.attempt, "command": sent.command_id},
        )
        return sent

    async def start(self, request: PrivacyRequest) -> ErasureProgress | None:
        """Order the erasure of a new request (or resend the last order of one already
        ordered: the same command, which services act on once)."""
        order = request.last_order
        if order is None:
            reason = (
                "erasure requested on the subject's behalf by " + request.requested_by_role
                if request.on_behalf
                else "erasure requested by the subject"
            )
            await self._order(request.request_id, reason, first=True)
        elif not request.final:
            await self.publisher.publish(erase_command(request, order))
        return await self.advance(request.request_id)

    # --- answers ---------------------------------------------------------------------------------

    async def on_report(self, report: SubjectErasedReport) -> str | None:
        """A service's `SubjectErased` data arrived; returns the request it acknowledged."""
        self._log_answer_read("events topic", report.service, report.occurred_at)
        piece = await self.evidence.add_report(report)
        settled = await self._settle([piece])
        if not piece.complete:
            self._look_up(report)
        return settled[0] if settled else None

    def _look_up(self, report: SubjectErasedReport) -> None:
        """Ask the log for the answer's entry in the background (the caller is a consumer's
        transaction, which must not wait on another service)."""
        if self.answers is None or report.event_id in self._looking:
            return
        task = asyncio.ensure_future(self._entry_from_log(self.answers, report))
        self._looking[report.event_id] = task
        task.add_done_callback(lambda _: self._looking.pop(report.event_id, None))

    async def _entry_from_log(self, answers: AuditLogAnswers, report: SubjectErasedReport) -> None:
        try:
            record = await answers.entry(report.event_id)
            if record is None:
                return  # not in the log within the wait: the feed brings it
            if record.event_type != f"{report.service}.SubjectErased" or (
                record.producer != report.service or record.subject_id != report.subject_id
            ):
                log.warning("the log's entry of %s is not that answer", report.event_id)
                return
            self._log_answer_read(
                "audit log lookup", record.producer, record.occurred_at, record.recorded_at
            )
            await self._settle([await self.evidence.add_audit(record)])
        except ServiceUnreachableError as exc:
            log.warning("entry of %s's answer not looked up: %s", report.service, exc.reason)
        except Exception:  # the feed still brings the entry: nothing is lost
            log.exception("entry of %s's answer not recorded", report.service)

    async def on_audit_entries(self, records: Sequence[AuditRecord]) -> list[str]:
        """Audit-log entries arrived (a window of the log, in `seq` order); only
        `<service>.SubjectErased` entries matter here. Returns the requests acknowledged.

        The answers of one window are recorded on each request in one change: when the feed
        falls behind, a window holds several services' answers, and recording them one change
        each made every answer wait for the changes of those before it."""
        evidence = []
        for record in records:
            if record.event_type != f"{record.producer}.SubjectErased" or not record.subject_id:
                continue
            self._log_answer_read(
                "audit log", record.producer, record.occurred_at, record.recorded_at
            )
            evidence.append(await self.evidence.add_audit(record))
        return await self._settle(evidence)

    def _log_answer_read(
        self, route: str, service: str, answered: datetime, logged: datetime | None = None
    ) -> None:
        """Where an answer's time to retention goes, for operators: an acknowledgement needs
        both routes, so the slower one sets the pace (`logged_s`: from the answer to the audit
        log taking it in; `read_s`: from the answer to retention reading it)."""
        timings = {"read_s": round((self.clock.now() - answered).total_seconds(), 3)}
        if logged is not None:
            timings["logged_s"] = round((logged - answered).total_seconds(), 3)
        log.info("erasure answer read", extra={"route": route, "answering": service, **timings})

    async def _request_of(self, evidence: Evidence) -> str | None:
        report = evidence.report
        assert report is not None
        if report.request_id:
            view = await self.views.get(report.request_id)
            # Answers to a policy's order name its run, not a request: nothing to acknowledge.
            return report.request_id if view is not None else None
        view = await self.views.open_for(evidence.subject_id, "erasure")
        return None if view is None else str(view["_id"])

    async def _settle(self, evidence: Sequence[Evidence]) -> list[str]:
        """Record the complete pieces of evidence as acknowledgements, one change per request;
        returns the requests that took one."""
        by_request: dict[str, list[Evidence]] = {}
        found: dict[tuple[str | None, str], str | None] = {}  # one lookup per request named
        for piece in evidence:
            if not piece.complete or piece.event_id in self._recorded:
                continue
            assert piece.report is not None
            named = (piece.report.request_id, piece.subject_id)
            if named not in found:
                found[named] = await self._request_of(piece)
            request_id = found[named]
            if request_id is not None:
                by_request.setdefault(request_id, []).append(piece)
        for request_id, pieces in by_request.items():
            await self._acknowledge(request_id, pieces)
        return list(by_request)

    async def _acknowledge(self, request_id: str, pieces: Sequence[Evidence]) -> None:
        """Record answers on their request. Answers that arrive while a change of the request
        is being written wait, and are recorded together in the next change: under load one
        change takes tenths of a second, and a change per answer made the last answer of an
        erasure wait for all the others."""
        self._waiting.setdefault(request_id, []).extend(pieces)
        running = self._recording.get(request_id)
        if running is not None:
            await asyncio.shield(running)  # it records these too before it ends
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._recording[request_id] = done
        try:
            while batch := self._waiting.pop(request_id, None):
                await self._record(request_id, batch)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as exc:
            self._waiting.pop(request_id, None)  # their callers get the failure too
            done.set_exception(exc)
            done.exception()  # retrieved: a failure nobody else waited for is raised here
            raise
        else:
            done.set_result(None)
        finally:
            del self._recording[request_id]

    async def _record(self, request_id: str, pieces: Sequence[Evidence]) -> None:
        acks = [(piece.subject_id, _acknowledgement(piece)) for piece in pieces]

        def record(request: PrivacyRequest) -> list[AcknowledgementData]:
            if request.request_type != "erasure" or not request.orders or request.final:
                return []
            return [
                ack
                for subject_id, ack in acks
                if subject_id == request.subject_id and request.acknowledge(ack)
            ]

        request, recorded = await self.book.change(request_id, record)
        for _, ack in acks:  # recorded now or before: another route's copy changes nothing
            self._recorded[ack.event_id] = None
        while len(self._recorded) > MAX_ANSWERS_REMEMBERED:
            del self._recorded[next(iter(self._recorded))]
        if not recorded:
            return
        if self.advance_later is None:
            await self.advance(request_id)
            return
        order = request.last_order
        for ack in recorded:
            if order is not None and acknowledgement_counts(ack, order):
                self._ask_now(request, order.command_id, ack.service)
        self.advance_later(request_id)

    # --- checking and concluding -----------------------------------------------------------------

    async def _footprint(self, service: str, subject_id: str) -> Footprint | None:
        """The service's footprint, or None (logged) when it does not answer."""
        try:
            return await self.directory.footprint(service, subject_id)
        except ServiceUnreachableError as exc:
            log.warning("footprint of %s unavailable: %s", service, exc.reason)
            return None

    def _ask_now(self, request: PrivacyRequest, command_id: str, service: str) -> None:
        key = (request.request_id, command_id, service)
        if key in self._asked:
            return
        self._asked[key] = asyncio.ensure_future(self._footprint(service, request.subject_id))
        while len(self._asked) > MAX_ORDERS_REMEMBERED:  # never collected: forget the oldest
            self._asked.pop(next(iter(self._asked))).cancel()

    async def _footprints(
        self, request: PrivacyRequest, command_id: str, services: list[str]
    ) -> dict[str, Footprint]:
        """Every acknowledged service's footprint, asked at once (a request waits for the
        slowest service, not for their sum), or taken from the call made when its answer was
        recorded; one that does not answer is left out."""

        async def one(service: str) -> Footprint | None:
            asked = self._asked.pop((request.request_id, command_id, service), None)
            if asked is not None:
                return await asked
            return await self._footprint(service, request.subject_id)

        found = await asyncio.gather(*(one(service) for service in services))
        return {s: f for s, f in zip(services, found, strict=True) if f is not None}

    def _answered_meanwhile(
        self, request_id: str, command_id: str, acks: Mapping[str, AcknowledgementData]
    ) -> bool:
        """Whether an answer to this order was recorded after `acks` were read (its footprint
        is being asked for)."""
        return any(r == request_id and c == command_id and s not in acks for r, c, s in self._asked)

    async def advance(self, request_id: str) -> ErasureProgress | None:
        """Assess the request against fresh footprints; conclude when it may."""
        started = time.monotonic()
        request = await self.book.load(request_id)
        order = request.last_order
        if request.request_type != "erasure" or order is None or request.final:
            return None
        acks = request.acknowledgements_for_last_order()
        key = (request_id, order.command_id)
        clean = self._clean.get(key, {})
        asked = sorted(set(acks) - set(clean))
        loaded = time.monotonic()
        fresh = await self._footprints(request, order.command_id, asked)
        if self._answered_meanwhile(request_id, order.command_id, acks):
            # Answers recorded while those were read (each one's footprint was asked as it
            # was recorded): this round takes them too, instead of leaving them to the next.
            latest = await self.book.load(request_id)
            newest = latest.last_order
            if newest is not None and newest.command_id == order.command_id and not latest.final:
                later = latest.acknowledgements_for_last_order()
                extra = sorted(set(later) - set(acks) - set(clean))
                fresh.update(await self._footprints(latest, order.command_id, extra))
                request, acks, asked = latest, later, sorted({*asked, *extra})
        footprints = {**fresh, **clean}
        if asked:  # where the time from an answer to `verified` goes, for operators
            log.info(
                "erasure footprints read",
                extra={
                    "request_id": request_id,
                    "services": asked,
                    "answered": sorted(fresh),
                    "load_s": round(loaded - started, 3),
                    "footprints_s": round(time.monotonic() - loaded, 3),
                },
            )
        now = self.clock.now()
        progress = assess_erasure(
            subject_id=request.subject_id,
            order=order,
            acknowledgements=acks,
            footprints=footprints,
            now=now,
            ack_timeout=self.ack_timeout,
        )
        await self.views.set_progress(request_id, _progress_view(progress))
        if progress.outcome == "in_progress":
            self._remember_clean(key, progress)
            return progress
        self._clean.pop(key, None)

        def conclude(current: PrivacyRequest) -> bool:
            latest = current.last_order
            if latest is None or latest.command_id != order.command_id:
                return False  # a newer order was sent meanwhile: assess that one instead
            return current.conclude(progress, now)

        try:
            await self.book.change(request_id, conclude)
        except IllegalTransitionError as exc:
            log.warning("request %s cannot conclude: %s", request_id, exc)
        return progress

    def _remember_clean(self, key: tuple[str, str], progress: ErasureProgress) -> None:
        clean = {
            s.service: s.footprint
            for s in progress.services
            if s.state is ServiceState.clean and s.footprint is not None
        }
        if not clean:
            return
        self._clean.pop(key, None)
        self._clean[key] = clean
        while len(self._clean) > MAX_ORDERS_REMEMBERED:
            del self._clean[next(iter(self._clean))]

    async def retry_stalled(self, request_id: str) -> bool:
        """Order again when a service is late or still shows data; True if an order was sent."""
        progress = await self.advance(request_id)
        if progress is None or not progress.to_retry:
            return False
        request = await self.book.load(request_id)
        if len(request.orders) >= self.max_attempts:
            log.error(
                "erasure %s: %s still not done after %d attempts",
                request_id,
                ", ".join(progress.to_retry),
                len(request.orders),
            )
            return False
        waiting = ", ".join(f"{s.service} ({s.state.value})" for s in progress.services if s.retry)
        await self._order(request_id, f"retry: {waiting}")
        await self.advance(request_id)
        return True

    async def on_hold_released(self, subject_id: str) -> str | None:
        """A hold of the subject ended: order the held part erased (returns the request)."""
        view = await self.views.open_for(subject_id, "erasure")
        if view is None:
            return None
        request = await self.book.load(str(view["_id"]))
        order = request.last_order
        if order is None or request.status not in (
            RequestStatus.partially_completed,
            RequestStatus.in_progress,
            RequestStatus.overdue,
        ):
            return None
        still = await self._held(subject_id)
        if {h.category for h in still} == {h.category for h in order.categories_held}:
            return None
        ended = sorted({h.hold_id for h in order.categories_held} - {h.hold_id for h in still})
        await self._order(
            request.request_id, "legal hold ended: erase what it kept (" + ", ".join(ended) + ")"
        )
        await self.advance(request.request_id)
        return request.request_id

    async def tick(self, request_ids: list[str]) -> dict[str, int]:
        """Scheduler pass over open erasure requests: order unordered ones, retry stalled."""
        ordered = retried = 0
        for request_id in request_ids:
            try:
                request = await self.book.load(request_id)
            except PrivacyRequestNotFoundError:
                continue
            if request.request_type != "erasure" or request.final:
                continue
            try:
                if request.last_order is None:
                    await self.start(request)
                    ordered += 1
                elif await self.retry_stalled(request_id):
                    retried += 1
            except Exception:
                log.exception("erasure pass failed for %s", request_id)
        return {"ordered": ordered, "retried": retried}


def _progress_view(progress: ErasureProgress) -> list[dict[str, Any]]:
    return [
        {
            "service": s.service,
            "state": s.state.value,
            "retry": s.retry,
            "detail": s.detail,
            "audit_seq": None if s.acknowledgement is None else s.acknowledgement.audit_seq,
            "readable_outside_held": s.readable_outside_held,
        }
        for s in progress.services
    ]

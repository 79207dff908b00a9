"""Privacy requests: loading and saving them, and the steps people take on them.

`RequestBook` is the one way use cases change a request: it loads the aggregate from the event
store, applies a decision, appends, and writes the read model; a concurrent writer
(`ConcurrencyError`) makes it reload and decide again. `PrivacyRequests` holds the use cases
of the HTTP edge: submit (one open request per subject and type: a second returns the first),
read, list, extend, reject, resolve, and the overdue pass of the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mmgen.events.envelope import Actor
from mmgen.events.errors import ConcurrencyError
from mmgen.events.ids import new_event_id
from mmgen.events.repository import EventSourcedRepository
from mmgen.retention.domain.errors import PrivacyRequestNotFoundError
from mmgen.retention.domain.events import RequestType
from mmgen.retention.domain.requests import PrivacyRequest, request_stream
from mmgen.retention.service_layer.ports import Clock, RequestViews

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_CONFLICT_RETRIES = 5


class RequestBook:
    """Load, change, save privacy requests; the read model follows every save."""

    def __init__(self, repository: EventSourcedRepository, views: RequestViews) -> None:
        self.repository = repository
        self.views = views
        #: One lock per request being changed in this process (gone once nobody holds it).
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def load(self, request_id: str) -> PrivacyRequest:
        request = await self.repository.get(PrivacyRequest, request_stream(request_id))
        if request is None:
            raise PrivacyRequestNotFoundError(request_id)
        return request

    async def save(self, request: PrivacyRequest) -> None:
        await self.repository.save(request)
        await self.views.put(request.view())
        if request.final:
            await self.views.release_claim(
                request.subject_id, request.request_type, request.request_id
            )

    async def change(
        self, request_id: str, decide: Callable[[PrivacyRequest], T]
    ) -> tuple[PrivacyRequest, T]:
        """Apply `decide` to the current request and save; retried on a concurrent write.

        Changes of one request in this process take turns: an erasure's answers arrive by
        several routes at once (the audit feed, lookups in the log, an assessment concluding),
        and when each loaded, decided and saved side by side, all but one were refused and
        began again, so under load recording five answers took seconds. Another replica's
        writes are still caught by the store's concurrency check."""
        turn = self._turns.get(request_id)
        if turn is None:
            turn = self._turns[request_id] = asyncio.Lock()
        async with turn:
            return await self._change(request_id, decide)

    async def _change(
        self, request_id: str, decide: Callable[[PrivacyRequest], T]
    ) -> tuple[PrivacyRequest, T]:
        for attempt in range(MAX_CONFLICT_RETRIES):
            request = await self.load(request_id)
            result = decide(request)
            try:
                await self.save(request)
            except ConcurrencyError:
                log.info("request %s changed concurrently (attempt %d)", request_id, attempt + 1)
                continue
            return request, result
        raise ConcurrencyError(request_stream(request_id), -1, -1)


Processor = Callable[[PrivacyRequest], Awaitable[Any]]


class PrivacyRequests:
    """The use cases behind `/privacy-requests`."""

    def __init__(
        self,
        book: RequestBook,
        views: RequestViews,
        clock: Clock,
        *,
        processors: dict[str, Processor] | None = None,
    ) -> None:
        self.book = book
        self.views = views
        self.clock = clock
        #: What starts the work of a new request of each type (erasure: order it; access:
        #: collect the exports); failures leave the request for the scheduler to retry.
        self.processors = processors or {}

    async def submit(
        self,
        *,
        request_type: RequestType,
        subject_id: str,
        actor: Actor,
        details: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """`(view, created)`: the new request, or the subject's open one of this type."""
        request_id = new_event_id()
        holder = await self.views.claim_open(subject_id, request_type, request_id)
        if holder != request_id:
            existing = await self.views.get(holder)
            if existing is not None and existing["open"]:
                return existing, False
            if existing is not None:
                # The holder ended but a crash kept its claim: free it and claim again.
                await self.views.release_claim(subject_id, request_type, holder)
                return await self.submit(
                    request_type=request_type, subject_id=subject_id, actor=actor, details=details
                )
            # The claim outlived a crash before its first save: build the claimed request.
            request_id = holder
        request = PrivacyRequest.receive(
            request_id,
            request_type=request_type,
            subject_id=subject_id,
            requested_by=actor,
            details=details,
            now=self.clock.now(),
        )
        try:
            await self.book.save(request)
        except ConcurrencyError:  # the same claimed request was written meanwhile
            view = await self.views.get(request_id)
            if view is None:
                raise
            return view, False
        await self.process(request_id)
        view = await self.views.get(request_id)
        assert view is not None
        return view, True

    async def process(self, request_id: str) -> None:
        """Start (or continue) the request's work; a failure is logged, the scheduler retries."""
        request = await self.book.load(request_id)
        processor = self.processors.get(request.request_type)
        if processor is None or request.final:
            return
        try:
            await processor(request)
        except Exception:
            log.exception("processing privacy request %s failed; it will be retried", request_id)

    async def get(self, request_id: str) -> dict[str, Any]:
        view = await self.views.get(request_id)
        if view is None:
            raise PrivacyRequestNotFoundError(request_id)
        return view

    async def details(self, request_id: str) -> str | None:
        """What the subject wrote (decrypted; `None` once erased)."""
        request = await self.book.load(request_id)
        return request.details if isinstance(request.details, str) else None

    async def page(
        self, *, status: str | None, overdue: bool, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        return await self.views.page(
            status=status,
            overdue_at=self.clock.now() if overdue else None,
            limit=limit,
            after=after,
        )

    async def extend(
        self, request_id: str, *, months: int, reason: str | None, by: Actor
    ) -> dict[str, Any]:
        now = self.clock.now()
        request, _ = await self.book.change(
            request_id, lambda r: r.extend_deadline(months=months, reason=reason, by=by, now=now)
        )
        return request.view()

    async def reject(self, request_id: str, *, reason: str, by: Actor) -> dict[str, Any]:
        now = self.clock.now()
        request, _ = await self.book.change(
            request_id, lambda r: r.reject(reason=reason, by=by, now=now)
        )
        return request.view()

    async def resolve(
        self, request_id: str, *, service: str, note: str, by: Actor
    ) -> dict[str, Any]:
        now = self.clock.now()
        request, _ = await self.book.change(
            request_id, lambda r: r.resolve(service=service, note=note, by=by, now=now)
        )
        return request.view()

    async def mark_overdue(self, *, batch: int = 200) -> int:
        """Mark every open request whose deadline has passed unanswered; returns how many."""
        now = self.clock.now()
        marked = 0
        after: str | None = None
        while True:
            page = await self.views.page(status=None, overdue_at=now, limit=batch, after=after)
            for view in page:
                if view["status"] == "overdue":
                    continue
                _, changed = await self.book.change(view["_id"], lambda r: r.mark_overdue(now))
                marked += int(changed)
            if len(page) < batch:
                return marked
            after = page[-1]["_id"]

    async def count_overdue(self) -> int:
        """Requests past their deadline, unanswered, now (for the service's gauge)."""
        return await self.views.count_overdue(self.clock.now())

    async def seconds_to_nearest_deadline(self) -> float | None:
        """Time left until the earliest deadline of an open, unanswered request (negative once
        it passed; None when no request waits for an answer)."""
        due = await self.views.nearest_due()
        return None if due is None else (due - self.clock.now()).total_seconds()

    async def open_ids(self, *, batch: int = 200) -> list[str]:
        """Every open request's id (scheduler passes read them page by page)."""
        out: list[str] = []
        after: str | None = None
        while True:
            page = await self.views.open_ids(limit=batch, after=after)
            out.extend(page)
            if len(page) < batch:
                return out
            after = page[-1]

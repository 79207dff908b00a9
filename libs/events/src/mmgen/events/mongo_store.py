"""`MongoEventStore`: the event store on MongoDB (PyMongo async), with group commit.

Why group commit: one transaction per event tops out near 600 txn/s on SecantusDB (INFRA.md)
and every transaction serialises on the producer's counter document anyway. Concurrent
`append` calls in this process are queued; one committer takes everything queued and
commits it in ONE transaction. The committer is the bottleneck, so it does only what must
be serial:

1. in the caller's own task, before it queues (so it overlaps the transaction in flight),
   the events become BSON-ready documents, and an `expected_version` beyond what this
   process knows of the stream is confirmed with one indexed lookup ("version v exists"
   never stops being true, so what the process knows is a safe lower bound); after the
   commit, the caller numbers its own envelopes;
2. the committer checks each `expected_version` in queue order against the known versions
   (an earlier append in the group moves them); a stale one becomes that caller's
   `ConcurrencyError` and is left out — it never fails the others;
3. in the transaction, `$inc` the producer's counter (`<prefix>_counters`) by the number of
   accepted events and number them from the value it returns: gapless, and in commit
   order, because every transaction that takes numbers writes that one document (a
   concurrent one write-conflicts and `with_transaction` retries it);
4. one `insert_many` of the group's documents. The unique `(stream_id, stream_version)`
   index is the concurrency guard against other processes (as in pyeventsourcing's
   recorders): a duplicate aborts the transaction, the offending append gets its
   `ConcurrencyError` (or `DuplicateEventIdError` for a reused event id) and the rest of the
   group is retried.

A transaction is three commands (counter, `insert_many`, commit), the fewest this takes.
Tried on SecantusDB and not kept (libs/events README, "Benchmark"): splitting the appends
in flight into two groups, so one commits while the other's callers prepare — slower: the
counter and the commit alone take over a millisecond of database CPU and as much client
CPU per transaction, more than the caller work the second group overlaps; and one client
`bulkWrite` holding the counter update and the inserts — no less database CPU than the
three commands.

There is no per-stream head document: on SecantusDB, updating one head per stream cost as
much as the event inserts themselves (bench/bench_events_append.py).

The transaction callback only computes into local variables; callers' futures are resolved
after the commit returns, so a retried callback has no side effects.

Reads use bounded windows on indexed fields (SecantusDB applies `limit` late):
`(stream_id, stream_version)` windows for `load` and `stream_version`, `producer_seq` windows
for `read_range`, `_id` lookups otherwise. Version checks stay one key lookup each: an
`$or` of `(stream_id, stream_version)` pairs is a collection scan on SecantusDB (the
benchmark's `version_lookups`: 1.2 s for 20 pairs over 10,000 events, 23 ms for 20 lookups).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from mmgen.events.concerns import durable, durable_session
from mmgen.events.envelope import Envelope
from mmgen.events.errors import (
    ConcurrencyError,
    DuplicateEventIdError,
    EventsError,
    StoreClosedError,
)
from mmgen.events.store import (
    DEFAULT_MAX_READ_WINDOW,
    CommitSignal,
    check_append,
    check_window,
    wait_until_past,
)

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
LOAD_PAGE = 1_000


class _RetryWithout(Exception):
    """The transaction aborted because of one append: settle it with `error`, retry the rest."""

    def __init__(self, pending: _Pending, error: EventsError) -> None:
        self.pending, self.error = pending, error


@dataclass(eq=False)
class _Pending:
    stream_id: str
    expected_version: int
    events: Sequence[Envelope]
    docs: list[dict[str, Any]] = field(repr=False)  # the events as documents, no producer_seq yet
    future: asyncio.Future[int] = field(repr=False)  # the first producer_seq, once committed

    def settle(self, result: int | BaseException) -> None:
        if self.future.done():  # the caller was cancelled; the outcome stands regardless
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)


class MongoEventStore:
    """Event store of one producer in one service database.

    Collections (names from `prefix`): `<prefix>` the events (`_id` = event id, unique
    `(stream_id, stream_version)`, unique `producer_seq`), `<prefix>_counters` the producer's
    sequence counter. Call `ensure_indexes()` once at start.
    """

    def __init__(
        self,
        db: AsyncDatabase[Any],
        producer: str,
        *,
        prefix: str = "events",
        max_batch_events: int = 1_000,
        max_read_window: int = DEFAULT_MAX_READ_WINDOW,
        poll_interval: float = 0.2,
        known_streams: int = 100_000,
    ) -> None:
        self._db = db
        self._producer = producer
        # The counter hands out `producer_seq`: read and written with `majority` (concerns.py).
        self.events = durable(db[prefix])
        self.counters = durable(db[f"{prefix}_counters"])
        self._max_batch_events = max_batch_events
        self._max_read_window = max_read_window
        self._poll_interval = poll_interval
        self._known: dict[str, int] = {}  # stream -> a version known to exist (a lower bound)
        self._known_limit = known_streams
        self._queue: deque[_Pending] = deque()
        self._committer: asyncio.Task[None] | None = None
        self._signal = CommitSignal()
        self._closed = False
        self.batches_committed = 0  # for benchmarks and tests: how much grouping happened

    @property
    def producer(self) -> str:
        return self._producer

    @property
    def max_read_window(self) -> int:
        return self._max_read_window

    async def ensure_indexes(self) -> None:
        """Create the indexes the store's writes and bounded reads rely on (idempotent)."""
        await self.events.create_index(
            [("stream_id", ASCENDING), ("stream_version", ASCENDING)],
            unique=True,
            name="stream_version_unique",
        )
        await self.events.create_index(
            [("producer_seq", ASCENDING)], unique=True, name="producer_seq_unique"
        )

    def _learn(self, stream_id: str, version: int) -> None:
        """Remember that `version` of the stream exists (versions only ever grow)."""
        if version <= self._known.get(stream_id, 0):
            return
        if stream_id not in self._known and len(self._known) >= self._known_limit:
            self._known.pop(next(iter(self._known)))  # forget the oldest hint; it is only a hint
        self._known[stream_id] = version

    # --- writes ------------------------------------------------------------------------------

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        check_append(self._producer, stream_id, expected_version, events)
        if self._closed:
            raise StoreClosedError("event store is closed")
        events = list(events)
        if expected_version > self._known.get(stream_id, 0):
            # Here, not in the committer: the lookup overlaps the transaction in flight.
            # Not found is no verdict yet (an append queued earlier may create the version).
            await self._version_exists(stream_id, expected_version)
            if self._closed:
                raise StoreClosedError("event store is closed")
        docs = [e.to_document() for e in events]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(stream_id, expected_version, events, docs, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._drain(), name="events-group-commit")
        first = await future
        return [e.with_position(first + i) for i, e in enumerate(events)]

    async def append_in(
        self,
        session: AsyncClientSession,
        stream_id: str,
        expected_version: int,
        events: Sequence[Envelope],
    ) -> list[Envelope]:
        """Append inside the caller's transaction: the events commit or roll back with it.

        For effects that must be recorded together with their event (an erasure's read-model
        deletes and its `SubjectErased`). It bypasses group commit; the sequence counter is
        taken in the caller's transaction, so `producer_seq` stays gapless in commit order
        (two transactions on the counter conflict, and the later one is retried).
        """
        check_append(self._producer, stream_id, expected_version, events)
        if self._closed:
            raise StoreClosedError("event store is closed")

        async def exists(version: int) -> bool:
            doc = await self.events.find_one(
                {"stream_id": stream_id, "stream_version": version},
                projection={"_id": 1},
                session=session,
            )
            return doc is not None

        # Two indexed equality lookups: the expected version is there, the next one is not.
        if (expected_version and not await exists(expected_version)) or await exists(
            expected_version + 1
        ):
            raise ConcurrencyError(
                stream_id, expected_version, await self.stream_version(stream_id)
            )
        counter = await self.counters.find_one_and_update(
            {"_id": self._producer},
            {"$inc": {"seq": len(events)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if counter is None:
            raise EventsError("sequence counter upsert returned nothing")
        first = int(counter["seq"]) - len(events) + 1
        stored = [e.with_position(first + i) for i, e in enumerate(events)]
        await self.events.insert_many(
            [e.to_document() for e in stored], ordered=True, session=session
        )
        return stored

    async def close(self) -> None:
        """Refuse new appends and wait until the queued ones are committed."""
        self._closed = True
        if self._committer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer

    def _take(self) -> list[_Pending]:
        """The next group: everything queued, oldest first, up to `max_batch_events` events."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (
            not batch or size + len(self._queue[0].events) <= self._max_batch_events
        ):
            pending = self._queue.popleft()
            batch.append(pending)
            size += len(pending.events)
        return batch

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                await self._commit(batch)
            except Exception as exc:  # settle callers, never lose the committer
                log.exception("event store batch of %d appends failed", len(batch))
                for pending in batch:
                    pending.settle(exc)

    async def _precheck(self, batch: list[_Pending]) -> list[_Pending]:
        """Settle stale appends with `ConcurrencyError`; return the ones worth committing."""
        view: dict[str, int] = {}
        accepted: list[_Pending] = []
        for pending in batch:
            stream, expected = pending.stream_id, pending.expected_version
            known = view.get(stream, self._known.get(stream, 0))
            if known < expected and not await self._version_exists(stream, expected):
                actual = await self.stream_version(stream)
                pending.settle(ConcurrencyError(stream, expected, actual))
                continue
            known = max(known, expected)
            if known > expected:
                pending.settle(ConcurrencyError(stream, expected, known))
                continue
            view[stream] = expected + len(pending.events)
            accepted.append(pending)
        return accepted

    async def _commit(self, batch: list[_Pending]) -> None:
        """Commit one batch; each caller gets its own result or its own error."""
        accepted = await self._precheck(batch)
        while accepted:
            try:
                seq = await self._transaction(accepted)
            except _RetryWithout as retry:
                retry.pending.settle(retry.error)
                accepted = [p for p in accepted if p is not retry.pending]
                continue
            self.batches_committed += 1
            for pending in accepted:
                self._learn(pending.stream_id, pending.expected_version + len(pending.events))
                pending.settle(seq)  # the caller numbers its envelopes in its own task
                seq += len(pending.events)
            self._signal.fire()
            return

    async def _transaction(self, accepted: list[_Pending]) -> int:
        """Commit the accepted appends in one transaction; the first `producer_seq` given."""
        owners: list[_Pending] = []  # which append each inserted document belongs to
        for pending in accepted:
            owners.extend([pending] * len(pending.events))

        async def callback(session: AsyncClientSession) -> int:
            # Everything computed here is local: with_transaction may run this again.
            count = len(owners)
            counter = await self.counters.find_one_and_update(
                {"_id": self._producer},
                {"$inc": {"seq": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if counter is None:  # upsert with ReturnDocument.AFTER always returns the document
                raise EventsError("sequence counter upsert returned nothing")
            first = int(counter["seq"]) - count + 1
            docs = [
                {**doc, "producer_seq": seq}
                for seq, doc in enumerate((d for p in accepted for d in p.docs), start=first)
            ]
            await self.events.insert_many(docs, ordered=True, session=session)
            return first

        try:
            async with durable_session(self._db.client) as session:
                return await session.with_transaction(callback)
        except BulkWriteError as exc:
            culprit = _duplicate_at(exc)
            if culprit is None:
                raise
            index, key_pattern = culprit
            raise await self._blame(owners[index], key_pattern) from exc
        except (DuplicateKeyError, OperationFailure) as exc:
            if not _is_duplicate_key(exc):
                raise
            raise await self._blame_unknown(accepted) from exc

    async def _blame(self, pending: _Pending, key_pattern: dict[str, Any]) -> _RetryWithout:
        if "stream_id" in key_pattern:
            actual = await self.stream_version(pending.stream_id)
            error: EventsError = ConcurrencyError(
                pending.stream_id, pending.expected_version, actual
            )
            return _RetryWithout(pending, error)
        if "_id" in key_pattern:
            dupes = await self._existing_ids(pending.events)
            return _RetryWithout(
                pending, DuplicateEventIdError(dupes or [e.event_id for e in pending.events])
            )
        return await self._blame_unknown([pending])

    async def _blame_unknown(self, accepted: list[_Pending]) -> _RetryWithout:
        """No index in the error: find an append whose slot or event id is already taken."""
        for pending in accepted:
            dupes = await self._existing_ids(pending.events)
            if dupes:
                return _RetryWithout(pending, DuplicateEventIdError(dupes))
            if await self._version_exists(pending.stream_id, pending.expected_version + 1):
                actual = await self.stream_version(pending.stream_id)
                return _RetryWithout(
                    pending, ConcurrencyError(pending.stream_id, pending.expected_version, actual)
                )
        last = accepted[-1]  # the duplicate is inside the batch itself: drop the later one
        return _RetryWithout(last, DuplicateEventIdError([e.event_id for e in last.events]))

    async def _existing_ids(self, events: Sequence[Envelope]) -> list[str]:
        ids = [e.event_id for e in events]
        found = {d["_id"] async for d in self.events.find({"_id": {"$in": ids}}, {"_id": 1})}
        return [i for i in ids if i in found]

    async def _version_exists(self, stream_id: str, version: int) -> bool:
        if version <= 0:
            return True
        cursor = self.events.find(
            {"stream_id": stream_id, "stream_version": {"$gte": version, "$lte": version}},
            {"_id": 1},
        )
        exists = bool([d async for d in cursor])
        if exists:
            self._learn(stream_id, version)
        return exists

    # --- reads -------------------------------------------------------------------------------

    async def _window(self, stream_id: str, low: int, high: int) -> list[Envelope]:
        cursor = self.events.find(
            {"stream_id": stream_id, "stream_version": {"$gt": low, "$lte": high}}
        )
        page = [Envelope.from_document(d) async for d in cursor]
        page.sort(key=lambda e: e.stream_version)
        return page

    async def load(
        self, stream_id: str, after_version: int = 0, up_to_version: int | None = None
    ) -> list[Envelope]:
        out: list[Envelope] = []
        low = max(after_version, 0)
        while up_to_version is None or low < up_to_version:
            high = low + LOAD_PAGE
            if up_to_version is not None:
                high = min(high, up_to_version)
            page = await self._window(stream_id, low, high)
            out.extend(page)
            if page:
                self._learn(stream_id, page[-1].stream_version)
            if len(page) < high - low:  # versions are gapless: a short page is the end
                break
            low = high
        return out

    async def stream_version(self, stream_id: str) -> int:
        """Counted forward from the highest version known to exist, one bounded window at a time."""
        low = self._known.get(stream_id, 0)
        while True:
            cursor = self.events.find(
                {"stream_id": stream_id, "stream_version": {"$gt": low, "$lte": low + LOAD_PAGE}},
                {"_id": 0, "stream_version": 1},
            )
            found = [d["stream_version"] async for d in cursor]
            if found:
                low = max(found)
                self._learn(stream_id, low)
            if len(found) < LOAD_PAGE:
                return low

    async def read_range(self, start_seq: int, end_seq: int) -> list[Envelope]:
        check_window(start_seq, end_seq, self._max_read_window)
        if end_seq == start_seq:
            return []
        cursor = self.events.find({"producer_seq": {"$gte": start_seq, "$lt": end_seq}})
        out = [Envelope.from_document(d) async for d in cursor]
        out.sort(key=lambda e: e.producer_seq or 0)
        return out

    async def last_seq(self) -> int:
        doc = await self.counters.find_one({"_id": self._producer})
        return int(doc["seq"]) if doc else 0

    async def wait_for_append(self, after_seq: int, timeout: float) -> int:  # noqa: ASYNC109
        return await wait_until_past(self, self._signal, after_seq, timeout, self._poll_interval)

    async def get(self, event_id: str) -> Envelope | None:
        doc = await self.events.find_one({"_id": event_id})
        return Envelope.from_document(doc) if doc else None


def _duplicate_at(exc: BulkWriteError) -> tuple[int, dict[str, Any]] | None:
    """(index of the document, key pattern) of the first duplicate-key write error."""
    for error in exc.details.get("writeErrors", []):
        if error.get("code") == DUPLICATE_KEY and "index" in error:
            return int(error["index"]), dict(error.get("keyPattern") or {})
    return None


def _is_duplicate_key(exc: BaseException) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))
    return isinstance(exc, OperationFailure) and exc.code == DUPLICATE_KEY

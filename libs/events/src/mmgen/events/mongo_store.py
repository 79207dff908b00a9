"""`MongoEventStore`: the event store on MongoDB (PyMongo async), with group commit.

Why group commit: one transaction per event tops out near 600 txn/s on SecantusDB (INFRA.md)
and every transaction serialises on the producer's counter document anyway. Concurrent
`append` calls in this process are queued; one committer takes everything queued and
commits it in ONE transaction:

1. read the heads (`<prefix>_streams`, `_id` = stream id, `version`) of every stream in the
   batch, by key;
2. check each append's `expected_version` in queue order against those heads (an earlier
   append in the same batch moves the head); a mismatch becomes that caller's
   `ConcurrencyError` and is simply left out — it never fails the others;
3. `$inc` the producer's counter (`<prefix>_counters`) by the number of accepted events and
   number them from the value it returns: gapless, and in commit order, because every
   transaction that takes numbers writes that one document (a concurrent one write-conflicts
   and is retried by `with_transaction`);
4. insert the events, move the heads (guarded by their old version), commit.

The transaction callback only computes into local variables; callers' futures are resolved
after the commit returns, so a retried callback has no side effects. A non-transient failure
of a multi-append batch (e.g. a duplicate event id) re-runs its appends one by one, so the
error reaches only the caller who caused it.

Reads use bounded windows on indexed fields (SecantusDB applies `limit` late):
`(stream_id, stream_version)` windows for `load`, `producer_seq` windows for `read_range`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

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


class _HeadMovedError(Exception):
    """A stream head changed between our read and our write (another process): retry the batch."""


@dataclass(eq=False)
class _Pending:
    stream_id: str
    expected_version: int
    events: Sequence[Envelope]
    future: asyncio.Future[list[Envelope]] = field(repr=False)


class MongoEventStore:
    """Event store of one producer in one service database.

    Collections (names from `prefix`): `<prefix>` the events (`_id` = event id, unique
    `(stream_id, stream_version)`, unique `producer_seq`), `<prefix>_streams` the stream heads,
    `<prefix>_counters` the producer's sequence counter. Call `ensure_indexes()` once at start.
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
        batch_retries: int = 5,
    ) -> None:
        self._db = db
        self._producer = producer
        self.events = db[prefix]
        self.heads = db[f"{prefix}_streams"]
        self.counters = db[f"{prefix}_counters"]
        self._max_batch_events = max_batch_events
        self._max_read_window = max_read_window
        self._poll_interval = poll_interval
        self._batch_retries = batch_retries
        self._queue: list[_Pending] = []
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

    # --- writes ------------------------------------------------------------------------------

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Envelope]
    ) -> list[Envelope]:
        check_append(self._producer, stream_id, expected_version, events)
        if self._closed:
            raise StoreClosedError("event store is closed")
        future: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(stream_id, expected_version, list(events), future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._drain(), name="events-group-commit")
        return await future

    async def close(self) -> None:
        """Refuse new appends and wait until the queued ones are committed."""
        self._closed = True
        if self._committer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer

    async def _drain(self) -> None:
        while self._queue:
            batch: list[_Pending] = []
            size = 0
            while self._queue and (
                not batch or size + len(self._queue[0].events) <= self._max_batch_events
            ):
                pending = self._queue.pop(0)
                batch.append(pending)
                size += len(pending.events)
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        """Commit one batch and settle each caller's future with its own result or error."""
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._transaction(batch)
            except _HeadMovedError:
                if attempt <= self._batch_retries:
                    continue
                error: BaseException = EventsError("stream heads kept moving; batch not written")
            except (DuplicateKeyError, BulkWriteError, OperationFailure) as exc:
                if not _is_duplicate_key(exc):
                    error = exc
                elif len(batch) > 1:
                    for pending in batch:  # isolate the append that caused it
                        await self._commit([pending])
                    return
                else:
                    dupes = await self._existing_ids(batch[0].events)
                    if dupes:
                        error = DuplicateEventIdError(dupes)
                    elif attempt <= self._batch_retries:
                        continue  # a racing writer created the stream: re-read the heads
                    else:
                        error = exc
            except Exception as exc:  # settle callers, never lose the committer
                log.exception("event store batch of %d appends failed", len(batch))
                error = exc
            else:
                self.batches_committed += 1
                for pending in batch:
                    result = outcome[id(pending)]
                    if pending.future.done():
                        continue
                    if isinstance(result, BaseException):
                        pending.future.set_exception(result)
                    else:
                        pending.future.set_result(result)
                self._signal.fire()
                return
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return

    async def _transaction(
        self, batch: list[_Pending]
    ) -> dict[int, list[Envelope] | ConcurrencyError]:
        async def callback(session: AsyncClientSession) -> dict[int, Any]:
            # Everything computed here is local: with_transaction may run this again.
            outcome: dict[int, Any] = {}
            stream_ids = list({p.stream_id for p in batch})
            heads: dict[str, int] = {}
            async for doc in self.heads.find({"_id": {"$in": stream_ids}}, session=session):
                heads[doc["_id"]] = doc["version"]
            current = dict(heads)
            accepted: list[_Pending] = []
            for pending in batch:
                actual = current.get(pending.stream_id, 0)
                if actual != pending.expected_version:
                    outcome[id(pending)] = ConcurrencyError(
                        pending.stream_id, pending.expected_version, actual
                    )
                    continue
                current[pending.stream_id] = actual + len(pending.events)
                accepted.append(pending)
            if not accepted:
                return outcome
            count = sum(len(p.events) for p in accepted)
            counter = await self.counters.find_one_and_update(
                {"_id": self._producer},
                {"$inc": {"seq": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if counter is None:  # upsert with ReturnDocument.AFTER always returns the document
                raise EventsError("sequence counter upsert returned nothing")
            seq = int(counter["seq"]) - count + 1
            docs: list[dict[str, Any]] = []
            for pending in accepted:
                stored = [e.with_position(seq + i) for i, e in enumerate(pending.events)]
                seq += len(stored)
                docs.extend(e.to_document() for e in stored)
                outcome[id(pending)] = stored
            await self.events.insert_many(docs, ordered=True, session=session)
            ops: list[Any] = []
            for stream_id in {p.stream_id for p in accepted}:
                if stream_id in heads:
                    ops.append(
                        UpdateOne(
                            {"_id": stream_id, "version": heads[stream_id]},
                            {"$set": {"version": current[stream_id]}},
                        )
                    )
                else:
                    ops.append(InsertOne({"_id": stream_id, "version": current[stream_id]}))
            result = await self.heads.bulk_write(ops, ordered=True, session=session)
            if result.matched_count != sum(isinstance(op, UpdateOne) for op in ops):
                raise _HeadMovedError
            return outcome

        async with self._db.client.start_session() as session:
            return await session.with_transaction(callback)

    async def _existing_ids(self, events: Sequence[Envelope]) -> list[str]:
        ids = [e.event_id for e in events]
        found = {d["_id"] async for d in self.events.find({"_id": {"$in": ids}}, {"_id": 1})}
        return [i for i in ids if i in found]

    # --- reads -------------------------------------------------------------------------------

    async def load(
        self, stream_id: str, after_version: int = 0, up_to_version: int | None = None
    ) -> list[Envelope]:
        end = await self.stream_version(stream_id)
        if up_to_version is not None:
            end = min(end, up_to_version)
        out: list[Envelope] = []
        low = max(after_version, 0)
        while low < end:
            high = min(low + LOAD_PAGE, end)
            cursor = self.events.find(
                {"stream_id": stream_id, "stream_version": {"$gt": low, "$lte": high}}
            )
            page = [Envelope.from_document(d) async for d in cursor]
            page.sort(key=lambda e: e.stream_version)
            out.extend(page)
            low = high
        return out

    async def stream_version(self, stream_id: str) -> int:
        doc = await self.heads.find_one({"_id": stream_id})
        return int(doc["version"]) if doc else 0

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


def _is_duplicate_key(exc: BaseException) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))
    return isinstance(exc, OperationFailure) and exc.code == DUPLICATE_KEY

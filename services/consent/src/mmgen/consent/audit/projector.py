"""Audit projector: every `<prefix>*.events` topic → the hash-chained log, in pipelined batches.

Why plain aiokafka rather than the kernel's `EventConsumer`: an audit append is a batch
operation on ONE head (seq, prev_hash, frontier) — entries, nodes, producers and head must be
written in one transaction per batch, in arrival order — while the runtime calls a handler per
event. Its guarantees are kept here the same way: a batch's offsets are committed only after
its transaction committed (at-least-once delivery, with the database's durability), and
idempotency on `event_id` is the log's own (the unique index, checked by every write).
Undecodable messages go to `<topic>.dlq` with the error in headers, like the runtime does;
nothing stalls a partition. So does an envelope whose `producer` is not the service of the
topic it came on (`<producer>.events`): counted in `audit_refused_total{topic_producer}`, never
an entry, and never counted in any producer's progress, so it opens no hole.

Pipeline: while batch N's transaction commits, batch N+1 is fetched, decoded and planned —
dedup, JCS, chain and leaf hashes, Merkle nodes, pages, producer progress; pure CPU, in a
worker thread — against the head N will leave (`AppendPlan.new_head`), counting N's event ids
as seen. Plans are written strictly in order. A plan that turns out stale (another writer —
the audit API's own entries, a second instance — moved the head, or an event reached the log
after it was planned) raises `AuditConflictError` in `append_plan`, which changed nothing; the
batch is planned again from the stored head, with every id looked up, and so is the batch
planned behind it.

Dedup lookups: an event whose `producer_seq` the log does not hold yet for its producer cannot
be a redelivery, so only the others are looked up before planning; the write's guards catch
anything else (a reused event id under a new number), and the batch is then planned again.

Pattern subscription: a new service's topic is picked up on the next metadata refresh
(`metadata_max_age_ms`), with no code change. Per-producer continuity is tracked by the store
(`ProducerProgress`); a hole open longer than the repair delay becomes a republish request
(`mmgen.events.republish`), repeated every delay while it stays open — but only once the
projector has read everything the broker held when the request came due. A projector behind
its topics sees "holes" that are merely events it has not read yet; asking for them would put
copies of them behind the originals, more to read, and under load a request every delay for
an ever longer tail kept it behind for good (a subject's 3,000 analytics events: every
erasure acknowledgement waited minutes for its audit entry behind republished copies).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo.errors import PyMongoError

from mmgen.consent.audit.domain import (
    AuditConflictError,
    AuditEntryRejectedError,
    ProducerProgress,
    entry_fields,
)
from mmgen.consent.audit.store import AppendPlan, Head, plan_append
from mmgen.consent.audit.tracing import trace_appended
from mmgen.events.envelope import Envelope
from mmgen.events.errors import EventsError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity
from mmgen.events.republish import RepublishRequest, send_republish_request
from mmgen.events.topics import dlq_topic

if TYPE_CHECKING:
    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.store import AppendResult, MongoAuditStore


class Planner(Protocol):
    """`plan_append`'s signature (the ingest benchmark passes one that does not hash)."""

    def __call__(
        self,
        items: Sequence[Mapping[str, Any]],
        head: Head,
        seen: set[str] | frozenset[str],
        producers: Mapping[str, ProducerProgress],
        now: datetime,
    ) -> AppendPlan: ...


@dataclass
class Batch:
    """Records fetched together: what became entry fields, what could not, and the plan."""

    records: list[Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    undecodable: list[tuple[Any, BaseException]] = field(default_factory=list)
    #: Envelopes that arrived on another producer's topic (never entries, never progress).
    refused: list[tuple[Any, BaseException]] = field(default_factory=list)
    plan: AppendPlan | None = None
    fetched_ns: int = field(default_factory=time.time_ns)

    def offsets(self) -> dict[TopicPartition, int]:
        """The offsets to commit once this batch is stored: past its last record, per partition."""
        out: dict[TopicPartition, int] = {}
        for record in self.records:
            tp = TopicPartition(record.topic, record.partition)
            out[tp] = max(out.get(tp, 0), record.offset + 1)
        return out


class ProducerMismatchError(EventsError):
    """An envelope whose `producer` is not the service whose events topic it came on."""


def decode(records: list[Any], producer_of: Callable[[str], str | None]) -> Batch:
    """Entry fields of each record (pure CPU); what cannot be decoded is set aside, and so is
    an envelope not on its producer's own topic (`producer_of(topic)`): only identity writes to
    `identity.events`, so an envelope there is identity's — one claiming identity anywhere
    else is not taken, or any service could write into another's audit trail."""
    batch = Batch(records)
    for record in records:
        try:
            envelope = Envelope.from_wire(record.value)
            if envelope.producer_seq is None:
                raise EventsError("event has no producer_seq")
            fields = entry_fields(envelope)
        except (EventsError, ValueError, TypeError) as exc:
            batch.undecodable.append((record, exc))
            continue
        owner = producer_of(record.topic)
        if envelope.producer != owner:
            batch.refused.append(
                (
                    record,
                    ProducerMismatchError(
                        f"producer {envelope.producer!r} on {record.topic}, the topic of "
                        f"{owner!r}: not taken into the audit log"
                    ),
                )
            )
            continue
        batch.items.append(fields)
        batch.sources.append(record)
    return batch


class HeldSeqs:
    """Which `producer_seq`s the log may hold already (their event ids are looked up).

    Out-of-order arrival across partitions leaves hundreds of ranges per producer, so a
    number is found by bisection over the ranges' starts, not by a scan.
    """

    def __init__(self, progress: Mapping[str, ProducerProgress]) -> None:
        self._progress = progress
        self._starts = {name: [r[0] for r in p.ranges] for name, p in progress.items()}

    def __call__(self, producer: str, seq: Any) -> bool:
        state = self._progress.get(producer)
        if state is None:
            return False
        if not isinstance(seq, int):
            return True
        if seq <= state.contiguous:
            return True
        at = bisect.bisect_right(self._starts[producer], seq) - 1
        return at >= 0 and seq <= state.ranges[at][1]


log = logging.getLogger(__name__)

COMMIT_TIMEOUT_S = 10.0
"""Longest wait for an offset commit: after a broker restart a vanished topic makes
`commit()` retry forever; past this the batch counts as failed (rewind, redeliver, dedup)."""

POSITIONS_TIMEOUT_S = 3.0
#: Least time between two subscriptions to the pattern made to restore a lost topic.
RESUBSCRIBE_EVERY_S = 30.0
"""Longest wait for the broker's end offsets and the consumer's positions before a repair.
After a broker restart a partition that vanished (or one mid-rebalance) makes the lookup
retry until the client's request timeout (40 s), and every producer's repair waited behind
it; past this the projector asks, as one that cannot tell would."""

APPEND_TIMEOUT_S = 30.0
"""Longest wait for a batch's append transaction. The database has been seen never to answer
one of its writes (the local stand-in, a 10,000-event history: the request sent, no server
thread working on it, the projector waiting for good and the log no longer growing); past this
the batch counts as failed like any other (the connection is dropped, the transaction aborts,
the batch is read again and what did commit is deduplicated)."""


class AuditProjector:
    """Consumes every events topic matching `pattern` and appends to the audit store."""

    def __init__(
        self,
        store: MongoAuditStore,
        bootstrap: str,
        *,
        pattern: str,
        group_id: str,
        producer: AIOKafkaProducer,
        republish_topic: str,
        metrics: AuditMetrics,
        batch_max: int = 1000,
        producer_of: Callable[[str], str | None],
        planner: Planner = plan_append,
        max_replans: int = 5,
        gap_repair_delay_s: float = 5.0,
        metadata_max_age_ms: int = 3000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
        on_append: Callable[[AppendResult], None] | None = None,
        security: KafkaSecurity = PLAINTEXT,
        append_timeout_s: float = APPEND_TIMEOUT_S,
    ) -> None:
        self.security = security
        self.append_timeout_s = append_timeout_s
        self.store = store
        self.bootstrap = bootstrap
        self.pattern = pattern
        self.group_id = group_id
        self.producer = producer
        self.republish_topic = republish_topic
        self.metrics = metrics
        self.batch_max = batch_max
        self.producer_of = producer_of
        self.planner = planner
        self.max_replans = max_replans
        self.gap_repair_delay = timedelta(seconds=gap_repair_delay_s)
        self.metadata_max_age_ms = metadata_max_age_ms
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.on_append = on_append
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._gap_task: asyncio.Task[None] | None = None
        #: Per producer due for repair: the broker's end offsets when it came due (what must
        #: be read before its holes count as lost).
        self._read_marks: dict[str, dict[TopicPartition, int]] = {}
        self._subscribed_again_at = -RESUBSCRIBE_EVERY_S
        self.last_error: str | None = None
        self.running = False

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=self.metadata_max_age_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.security.client_config(),
        )
        consumer.subscribe(pattern=self.pattern)
        await consumer.start()
        self._consumer = consumer
        self.running = True
        self._task = asyncio.create_task(self._run(), name="audit-projector")
        self._gap_task = asyncio.create_task(self._watch_gaps(), name="audit-gaps")

    async def stop(self) -> None:
        self.running = False
        for task in (self._task, self._gap_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._gap_task = None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    # --- ingest ---------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        backoff = 0.2
        while True:
            try:
                await self._pipeline(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing past the committed offsets counts: rewind to them and go again
                # (a batch whose transaction had committed is deduplicated on redelivery).
                self.last_error = repr(exc)
                log.exception("audit projector: batch failed, retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._rewind(consumer), COMMIT_TIMEOUT_S)

    async def _pipeline(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch, decode and plan batch N+1 while batch N's transaction commits."""
        writing: tuple[Batch, asyncio.Task[AppendResult]] | None = None
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                records = [r for rs in fetched.values() for r in rs]
                if not records:
                    if writing is not None:
                        await self._finish(consumer, *writing)
                        writing = None
                    continue
                batch = await self._decode(records)
                if not batch.items:  # nothing but dead letters: their offsets follow N's
                    if writing is not None:
                        await self._finish(consumer, *writing)
                        writing = None
                    await self._commit_offsets(consumer, batch)
                    continue
                ahead = writing[0].plan if writing is not None else None
                await self._plan(batch, ahead)
                if writing is not None:
                    previous = writing[0]
                    await self._finish(consumer, *writing)
                    writing = None
                    if previous.plan is not ahead:  # planned again: ours followed a stale head
                        await self._plan(batch, None, lookup_all=True)
                writing = (batch, asyncio.create_task(self._commit(batch)))
        finally:
            if writing is not None and not writing[1].done():
                writing[1].cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writing[1]

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    async def _finish(
        self, consumer: AIOKafkaConsumer, batch: Batch, task: asyncio.Task[AppendResult]
    ) -> AppendResult:
        """Wait for a batch's transaction, dead-letter what it rejected, commit its offsets."""
        result = await task
        for position, reason in result.rejected:
            await self._dead_letter(batch.sources[position], AuditEntryRejectedError(reason))
        trace_appended(batch.sources, group_id=self.group_id, started_ns=batch.fetched_ns)
        await self._commit_offsets(consumer, batch)
        self.last_error = None
        return result

    @staticmethod
    async def _commit_offsets(consumer: AIOKafkaConsumer, batch: Batch) -> None:
        """Commit the batch's own partitions only (not the consumer's later position)."""
        await asyncio.wait_for(consumer.commit(batch.offsets()), COMMIT_TIMEOUT_S)

    async def ingest(self, records: list[Any]) -> AppendResult | None:
        """Decode records and append them in one transaction, without pipelining (dead-letter
        what cannot be an entry); offsets are the caller's."""
        batch = await self._decode(records)
        if not batch.items:
            return None
        await self._plan(batch, None)
        result = await self._commit(batch)
        for position, reason in result.rejected:
            await self._dead_letter(batch.sources[position], AuditEntryRejectedError(reason))
        trace_appended(batch.sources, group_id=self.group_id, started_ns=batch.fetched_ns)
        return result

    async def _decode(self, records: list[Any]) -> Batch:
        batch = await asyncio.to_thread(decode, records, self.producer_of)
        for record, exc in batch.undecodable:
            await self._dead_letter(record, exc)
        for record, exc in batch.refused:
            # Parked with the reason for whoever investigates; it holds no producer's number,
            # so no producer's progress waits for it (no hole, no republish request).
            self.metrics.refused.labels(self.producer_of(record.topic) or "unknown").inc()
            await self._dead_letter(record, exc)
        return batch

    async def _plan(
        self, batch: Batch, ahead: AppendPlan | None, *, lookup_all: bool = False
    ) -> None:
        """Plan `batch` after `ahead` (a plan being written), else after the stored head.

        Ids looked up in the log: every one with `lookup_all`, otherwise those whose
        `producer_seq` is already held (possible redeliveries); `ahead`'s ids count as seen.
        """
        names = {str(i["producer"]) for i in batch.items}
        if ahead is None:
            head = await self.store.head()
            progress = await self.store.progress(names)
            inflight: frozenset[str] = frozenset()
        else:
            head = ahead.new_head
            progress = await self.store.progress(names - set(ahead.progress))
            progress.update({n: p for n, p in ahead.progress.items() if n in names})
            inflight = ahead.event_ids
        ids = [str(i["event_id"]) for i in batch.items]
        if not lookup_all:
            held = HeldSeqs(progress)
            ids = [
                event_id
                for event_id, item in zip(ids, batch.items, strict=True)
                if event_id not in inflight
                and held(str(item["producer"]), item.get("producer_seq"))
            ]
        seen = inflight | await self.store.seen_ids(ids)
        batch.plan = await asyncio.to_thread(
            self.planner, batch.items, head, seen, progress, datetime.now(UTC)
        )

    async def _commit(self, batch: Batch) -> AppendResult:
        """Write the batch's plan; when it is stale, plan it again from the stored head."""
        attempt = 0
        while True:
            assert batch.plan is not None
            try:
                async with asyncio.timeout(self.append_timeout_s):
                    result = await self.store.append_plan(batch.plan)
                break
            except AuditConflictError as exc:
                attempt += 1
                if attempt > self.max_replans:
                    raise
                self.metrics.replans.inc()
                log.info("audit projector: planning the batch again (%s)", exc)
                await self._plan(batch, None, lookup_all=True)
        self.record(result)
        return result

    def record(self, result: AppendResult) -> None:
        """Metrics and listeners after a committed append."""
        for entry in result.entries:
            self.metrics.appended.labels(entry.producer).inc()
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)
        self.metrics.tree_size.set(result.head.size)
        for producer, progress in result.progress.items():
            self.metrics.gaps_open.labels(producer).set(progress.missing)
        for producer in result.closed_gaps:
            self.metrics.repairs.labels(producer).inc()
        if self.on_append is not None and result.entries:
            self.on_append(result)

    async def _dead_letter(self, record: Any, exc: BaseException) -> None:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
        headers = [
            *(record.headers or ()),
            ("dlq_error_type", f"{type(exc).__module__}.{type(exc).__qualname__}".encode()),
            ("dlq_error_message", text.encode("utf-8", "replace")),
            ("dlq_stage", b"audit"),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer", self.group_id.encode()),
        ]
        await self.producer.send_and_wait(
            dlq_topic(record.topic), record.value, key=record.key, headers=headers
        )
        self.metrics.dead_lettered.inc()
        log.warning(
            "audit projector: %s offset %d dead-lettered: %s", record.topic, record.offset, text
        )

    # --- gap repair -----------------------------------------------------------------------

    async def _watch_gaps(self) -> None:
        period = max(0.1, min(1.0, self.gap_repair_delay.total_seconds() / 2))
        while True:
            await asyncio.sleep(period)
            try:
                await self.request_repairs()
            except asyncio.CancelledError:
                raise
            except (PyMongoError, Exception):
                log.exception("audit projector: gap check failed")

    async def request_repairs(self, now: datetime | None = None) -> list[RepublishRequest]:
        """Ask producers to republish holes open longer than the delay (again every delay)."""
        now = now or datetime.now(UTC)
        sent: list[RepublishRequest] = []
        for doc in await self.store.producer_states():
            try:
                sent.extend(await self._repair_producer(doc, now))
            except asyncio.CancelledError:
                raise
            except Exception:  # one producer's trouble must not stop the others' repair
                log.exception("audit: repair request for %s failed", doc.get("_id"))
        return sent

    async def _repair_producer(self, doc: dict[str, Any], now: datetime) -> list[RepublishRequest]:
        """Ask one producer for its holes (open longer than the delay), in bounded chunks.

        Holes are the runs missing below the highest number held, and the tail above it up to
        the producer's announced head (events lost after the last one received).
        """
        holes = producer_holes(doc)
        if not holes:
            self._read_marks.pop(str(doc["_id"]), None)
            if doc.get("tail_since") is not None:
                await self.store.producers.update_one(
                    {"_id": doc["_id"]}, {"$set": {"tail_since": None}}
                )
            return []
        since = doc.get("gap_since") if doc.get("ranges") else None
        if since is None:
            since = doc.get("tail_since")
            if since is None:  # first seen now: the delay counts from here
                await self.store.producers.update_one(
                    {"_id": doc["_id"]}, {"$set": {"tail_since": now}}
                )
                return []
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        last = doc.get("last_request_at")
        last = last if last is None or last.tzinfo else last.replace(tzinfo=UTC)
        if now - since < self.gap_repair_delay:
            return []
        if last is not None and now - last < self.gap_repair_delay:
            return []
        if not await self._read_what_the_broker_held(str(doc["_id"])):
            return []
        sent: list[RepublishRequest] = []
        for first, last_missing in holes:
            for request in RepublishRequest.chunked(str(doc["_id"]), first, last_missing):
                await send_republish_request(self.producer, self.republish_topic, request)
                sent.append(request)
        await self.store.note_repair_request(str(doc["_id"]), now)
        self.metrics.repair_requests.labels(str(doc["_id"])).inc()
        log.warning(
            "audit: asked %s to republish %s", doc["_id"], [(r.from_seq, r.to_seq) for r in sent]
        )
        return sent

    async def _read_what_the_broker_held(self, producer: str) -> bool:
        """Whether the projector has read up to the broker's end offsets as they were when
        `producer`'s repair first came due (taken now if not yet): until then its holes may be
        events waiting unread. Each request forgets the marks, so the next one waits for what
        the broker holds then — the copies the previous request brought included.

        A mark is lowered to the partition's end offset now when that is lower: a broker that
        came back empty (or truncated) no longer holds what the mark counted, and waiting for
        the consumer to pass it would hold the repair back until as many new events arrived.

        Offsets are asked only of partitions the consumer's metadata knows. For one it does
        not (a topic that came back with fewer partitions), the client would start tracking
        the metadata of that topic alone, and the pattern subscription would then drop every
        other events topic and never see it again.
        """
        consumer = self._consumer
        if consumer is None:
            return True
        try:
            async with asyncio.timeout(POSITIONS_TIMEOUT_S):
                await self._subscribe_again_if_topic_dropped(consumer, producer)
                assigned = set(consumer.assignment())
                if any(
                    tp.partition not in (consumer.partitions_for_topic(tp.topic) or ())
                    for tp in assigned
                ):
                    log.info("audit: a partition assigned is not in the metadata; asking")
                    self._read_marks.pop(producer, None)
                    return True
                ends = await consumer.end_offsets(list(assigned)) if assigned else {}
                marks = self._read_marks.get(producer)
                if marks is None:
                    marks = ends
                else:
                    marks = {tp: min(end, ends.get(tp, end)) for tp, end in marks.items()}
                self._read_marks[producer] = marks
                for tp, end in marks.items():
                    if tp in assigned and await consumer.position(tp) < end:
                        return False
        except asyncio.CancelledError:
            raise
        except Exception:  # a rebalance under way: ask, as a projector that cannot tell would
            log.info("audit: positions not compared with end offsets; asking", exc_info=True)
        self._read_marks.pop(producer, None)
        return True

    async def _subscribe_again_if_topic_dropped(
        self, consumer: AIOKafkaConsumer, producer: str
    ) -> None:
        """Subscribe to the pattern again when the events topic of the producer being repaired
        is on the broker but not in the subscription. The client (aiokafka) narrows its
        metadata to a single topic when it looks up offsets of a partition it does not know
        (its own reset after a broker came back empty does too); the pattern then matches that
        topic alone, and the other producers' events, their republished copies included, are
        never read again. Only that producer's topic counts, and at most once every
        `RESUBSCRIBE_EVERY_S`: a topic just created is missing until the next metadata
        refresh, and each subscription starts a rebalance."""
        now = time.monotonic()
        if now - self._subscribed_again_at < RESUBSCRIBE_EVERY_S:
            return
        pattern = re.compile(self.pattern)
        present = {topic for topic in await consumer.topics() if pattern.match(topic)}
        dropped = {
            topic
            for topic in present - consumer.subscription()
            if self.producer_of(topic) == producer
        }
        if dropped:
            self._subscribed_again_at = now
            log.warning(
                "audit: the subscription lost %s; subscribing to the pattern again",
                sorted(dropped),
            )
            consumer.subscribe(pattern=self.pattern)


def producer_holes(doc: Mapping[str, Any]) -> list[tuple[int, int]]:
    """Missing runs `(from, to)` of a producer's continuity document, tail included."""
    holes: list[tuple[int, int]] = []
    below = int(doc.get("contiguous", 0))
    for first, last_held in doc.get("ranges") or []:
        holes.append((below + 1, int(first) - 1))
        below = int(last_held)
    announced = int(doc.get("announced") or 0)
    if announced > below:
        holes.append((below + 1, announced))
    return holes

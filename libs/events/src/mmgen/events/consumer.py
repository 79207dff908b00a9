"""Consumer runtime on FastStream: exactly-once effects from at-least-once delivery.

What a subscription registered here guarantees, per message:

- decoding into an `Envelope` (an undecodable message is a poison message at once);
- the handler runs inside a MongoDB transaction together with the insert of a
  "processed `event_id`" marker, so the handler's own writes (made with `ctx.session`) and the
  marker commit or roll back as one: a redelivered or replayed event is skipped, never applied
  twice;
- what is wrong with the message itself (undecodable, failing validation) goes to `<topic>.dlq`
  at once with the error in its headers, and the partition moves on; what is transient (a
  write conflict, a write-concern or timeout error, a transaction still failing, the kernel's
  `ConcurrencyError`) is retried with backoff without limit — a good message never ends in the
  DLQ for the database's trouble — with `consumer_stalled_attempts` showing a consumer stuck;
  any other handler failure gets bounded retries, then the DLQ;
- the offset is committed only after the effect committed or the dead letter was acked
  (FastStream's default policy acks *before* handling: at-most-once; we use MANUAL);
- a subscription told which event types it acts on (`accepts`) acknowledges any other type at
  once, from the message's `event_type` header, without a transaction: reading another
  service's whole topic for one of its event types costs nothing for the rest;
- the handling span continues the producer's trace (`traceparent` header);
- Prometheus counters: processed, duplicates, retried, dead-lettered.

The transaction callback may be run more than once by the driver (transient transaction
errors), so a handler must have no side effects other than writes through `ctx.session`.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    PyMongoError,
    WriteConcernError,
)

from mmgen.events.concerns import durable_session
from mmgen.events.errors import (
    ConcurrencyError,
    EnvelopeInvalidError,
    EventDataInvalidError,
    EventsError,
)
from mmgen.events.topics import dlq_topic
from mmgen.events.tracing import extract_context, header_value, tracer

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

    from mmgen.events.envelope import Envelope

log = logging.getLogger(__name__)

PROCESSED_COLLECTION = "processed_events"
STREAM_POSITIONS_COLLECTION = "consumer_stream_positions"

# Dead-letter headers: the reason a message was parked, for whoever repairs it.
H_ERROR_TYPE = "dlq_error_type"
H_ERROR_MESSAGE = "dlq_error_message"
H_ERROR_STAGE = "dlq_stage"
H_ATTEMPTS = "dlq_attempts"
H_ORIGINAL_TOPIC = "dlq_original_topic"
H_ORIGINAL_PARTITION = "dlq_original_partition"
H_ORIGINAL_OFFSET = "dlq_original_offset"
H_CONSUMER = "dlq_consumer"
H_FAILED_AT = "dlq_failed_at"

_MAX_ERROR_HEADER = 2000
#: The header the relay puts the event type in (`mmgen.events.relay.H_EVENT_TYPE`).
EVENT_TYPE_HEADER = "event_type"

E = TypeVar("E")


class ConsumerError(EventsError):
    """Base of the consumer runtime's errors."""


class PoisonMessageError(ConsumerError):
    """The message cannot be decoded into an envelope: retrying cannot help."""


class StreamVersionGapError(ConsumerError):
    """An event arrived ahead of its stream's next expected version (an earlier one is missing)."""


@dataclass
class HandlerContext:
    """What a handler gets beside the event. Write only through `session` (the transaction)."""

    session: AsyncClientSession
    db: AsyncDatabase[Any]
    consumer: str
    topic: str
    partition: int
    offset: int
    attempt: int
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[E, HandlerContext], Awaitable[None]]
BatchHandler = Callable[[Sequence[tuple[E, HandlerContext]]], Awaitable[None]]
"""A handler of every new message of a batch at once (same transaction, same session)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: `attempts` tries in all, then dead letter."""

    attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    # Errors that say the *infrastructure* failed (database unreachable), not the message:
    # they never send a message to the DLQ; the message is redelivered after a backoff.
    infrastructure_errors: tuple[type[BaseException], ...] = (ConnectionFailure,)
    # Errors that pass with time: retried without limit, never dead-lettered.
    transient_errors: tuple[type[BaseException], ...] = (
        ConcurrencyError,
        WriteConcernError,
        ExecutionTimeout,
    )
    # Errors that say the message itself is wrong: dead-lettered at once, never retried.
    poison_errors: tuple[type[BaseException], ...] = (
        EnvelopeInvalidError,
        EventDataInvalidError,
        ValidationError,
    )
    #: Labels MongoDB puts on errors that a retry can clear.
    transient_labels: tuple[str, ...] = (
        "TransientTransactionError",
        "UnknownTransactionCommitResult",
        "RetryableWriteError",
    )

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (1-based)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, self.transient_errors):
            return True
        return isinstance(exc, PyMongoError) and any(
            exc.has_error_label(label) for label in self.transient_labels
        )

    def is_poison(self, exc: BaseException) -> bool:
        return isinstance(exc, (*self.poison_errors, PoisonMessageError))


class ConsumerMetrics:
    """Prometheus counters of the runtime; pass a registry (tests, several apps per process)."""

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "mmgen") -> None:
        kwargs: dict[str, Any] = {"namespace": namespace, "subsystem": "events"}
        if registry is not None:
            kwargs["registry"] = registry
        labels = ["consumer", "topic"]
        self.processed = Counter(
            "consumer_processed", "Events whose handler committed", labels, **kwargs
        )
        self.duplicates = Counter(
            "consumer_duplicates", "Events skipped as already processed", labels, **kwargs
        )
        self.retried = Counter(
            "consumer_retried", "Handler attempts that failed and were retried", labels, **kwargs
        )
        self.dead_lettered = Counter(
            "consumer_dead_lettered", "Messages sent to the dead-letter topic", labels, **kwargs
        )
        self.skipped = Counter(
            "consumer_skipped",
            "Messages of event types the subscription does not act on, acknowledged unread",
            labels,
            **kwargs,
        )
        self.stalled = Gauge(
            "consumer_stalled_attempts",
            "Attempts so far on a message failing with a transient error (0: not stalled)",
            labels,
            **kwargs,
        )


def processed_marker_id(consumer: str, event_id: str) -> str:
    """`_id` of the processed-event marker: one per (consumer, event), an indexed equality key."""
    return f"{consumer}:{event_id}"


async def already_processed(db: AsyncDatabase[Any], consumer: str, event_id: str) -> bool:
    """Whether `consumer` has committed the effect of `event_id` (for diagnostics and tests)."""
    doc = await db[PROCESSED_COLLECTION].find_one(
        {"_id": processed_marker_id(consumer, event_id)}, projection={"_id": 1}
    )
    return doc is not None


def _default_decode(body: bytes) -> Envelope:
    from mmgen.events.envelope import Envelope

    return Envelope.from_wire(body)


class _Duplicate(Exception):
    """Raised inside the transaction to abort it when the event was already applied."""


class _InfrastructureFailure(Exception):
    """The database failed, not the message: rewind and let the message come again."""


@dataclass(frozen=True)
class _Subscription(Generic[E]):
    name: str
    handler: Handler[E]
    check_versions: bool
    accepts: Callable[[str], bool] | None = None
    batch_handler: BatchHandler[E] | None = None
    prepare: Callable[[E], Awaitable[None]] | None = None

    def skips(self, record: Any) -> bool:
        """True for a record whose `event_type` header names a type this subscription does
        not act on (a record without the header is always handled)."""
        if self.accepts is None:
            return False
        event_type = header_value(record.headers, EVENT_TYPE_HEADER)
        return event_type is not None and not self.accepts(event_type)


class EventConsumer(Generic[E]):
    """Registers idempotent, retrying, dead-lettering subscriptions on a FastStream broker.

    One instance per service process is enough; `subscribe` once per handler. Subscribe before
    the broker starts (FastStream starts the subscribers it knows at `broker.start()`).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        db: AsyncDatabase[Any],
        *,
        decode: Callable[[bytes], E] | None = None,
        retry: RetryPolicy | None = None,
        metrics: ConsumerMetrics | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.broker = broker
        self.db = db
        self.decode: Callable[[bytes], E] = decode or _default_decode  # type: ignore[assignment]
        # (without `decode`, E is Envelope: what `_default_decode` returns)
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or ConsumerMetrics(registry)
        #: Subscriptions stuck on a transiently failing message: name → attempts so far.
        self.stalled: dict[str, int] = {}

    def subscribe(
        self,
        *topics: str,
        handler: Handler[E],
        group_id: str,
        pattern: str | None = None,
        name: str | None = None,
        check_stream_versions: bool = False,
        batch: bool = False,
        max_records: int = 500,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        accepts: Callable[[str], bool] | None = None,
        batch_handler: BatchHandler[E] | None = None,
        prepare: Callable[[E], Awaitable[None]] | None = None,
        **subscriber_kwargs: Any,
    ) -> Any:
        """Subscribe `handler` to `topics` (or to every topic matching the regex `pattern`).

        `name` scopes the processed-event markers (default: the group id): two consumers of
        the same event each apply it once. With `check_stream_versions`, events of a stream
        must arrive in `stream_version` order: an older or equal version is skipped as
        already applied, a version ahead of the next expected one is an error (retried, then
        dead-lettered) — for read models that fold a stream and cannot tolerate a gap.

        With `batch`, up to `max_records` messages are applied in one transaction and one
        offset commit (much faster); a batch with a failing event is redone one by one, so
        retries and dead letters behave exactly as without `batch`.

        `batch_handler` (with `batch`): called ONCE per batch with every new message of it and
        its context, in the batch's transaction, instead of `handler` per message — for a
        handler whose writes are cheaper as one bulk write than as one write per message.
        Messages redone one by one (a failing batch) still go to `handler`, so both must
        write the same. Not with `check_stream_versions` (a version gap is per message). The
        batch runs in no per-message span (nothing joins the producers' traces).

        `prepare(envelope)`: slow, idempotent work done before the transaction, outside it
        (not for a message already applied; again on every retry), for a handler whose effect
        is mostly writes that need no session (an erasure: keys shredded, rows deleted). The
        transaction is then short: one held open across slow work conflicts with every
        append the service makes meanwhile (they all take the sequence counter) and is run
        again from the start, for as long as the appends go on. Not with `batch`.

        `accepts(event_type)`: whether the handler acts on a type; messages whose
        `event_type` header names another type are acknowledged without being decoded, with
        no transaction and no processed marker (`consumer_skipped` counts them).
        """
        if bool(topics) == bool(pattern):
            raise ConsumerError("give either topics or a pattern")
        if batch_handler is not None and (not batch or check_stream_versions):
            raise ConsumerError("batch_handler needs batch and no check_stream_versions")
        if prepare is not None and batch:
            raise ConsumerError("prepare is for one message at a time, not with batch")
        sub = _Subscription(
            name or group_id, handler, check_stream_versions, accepts, batch_handler, prepare
        )
        common: dict[str, Any] = {
            "pattern": pattern,
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.MANUAL,
            "no_reply": True,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
        }
        fixed = {"ack_policy", "auto_offset_reset", "no_reply", "batch"} & subscriber_kwargs.keys()
        if fixed:
            raise ConsumerError(f"the runtime fixes {sorted(fixed)}: its guarantees depend on them")
        common.update(subscriber_kwargs)
        label = f"consume_{sub.name}".replace(".", "_").replace("-", "_")

        if batch:

            async def on_batch(message: KafkaMessage) -> None:
                await self._process_batch(message, sub)

            on_batch.__name__, on_batch.__doc__ = label, handler.__doc__
            return self.broker.subscriber(*topics, batch=True, max_records=max_records, **common)(
                on_batch
            )

        async def on_message(message: KafkaMessage) -> None:
            await self._process(message, sub)

        on_message.__name__, on_message.__doc__ = label, handler.__doc__
        return self.broker.subscriber(*topics, **common)(on_message)

    # --- one message at a time ----------------------------------------------------------------

    async def _process(self, message: Any, sub: _Subscription[E]) -> None:
        """Handle one message, then commit its offset — or rewind to it if nothing could be done."""
        if sub.skips(message.raw_message):
            self.metrics.skipped.labels(sub.name, message.raw_message.topic).inc()
            await message.ack()
            return
        try:
            await self._handle_record(message.raw_message, sub)
        except _InfrastructureFailure:
            await message.nack()
            return
        except BaseException:
            await message.nack()  # e.g. the dead letter could not be published: redeliver
            raise
        await message.ack()

    def _span(self, record: Any, consumer: str) -> Any:
        """The handling span of one record, a child of the producer's span from its headers."""
        return tracer().start_as_current_span(
            f"{record.topic} process",
            context=extract_context(record.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": consumer,
            },
        )

    async def _handle_record(
        self, record: Any, sub: _Subscription[E], envelope: E | None = None
    ) -> str:
        """Decode, apply with bounded retries, dead-letter when hopeless. Does not ack.

        Returns "processed", "duplicate" or "dead"; raises `_InfrastructureFailure` when the
        database is unreachable (the caller rewinds, the message is not the culprit).
        """
        labels = (sub.name, record.topic)
        with self._span(record, sub.name) as span:
            if envelope is None:
                try:
                    envelope = self.decode(record.value)
                except Exception as exc:  # noqa: BLE001 - any decoding failure makes it poison
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, "undecodable"))
                    await self._dead_letter(record, sub.name, exc, "decode", 1)
                    self.metrics.dead_lettered.labels(*labels).inc()
                    return "dead"
            event_id = str(getattr(envelope, "event_id", ""))
            span.set_attribute("messaging.message.id", event_id)
            attempt = 0
            while True:
                attempt += 1
                try:
                    if sub.prepare is not None and not await already_processed(
                        self.db, sub.name, event_id
                    ):
                        await sub.prepare(envelope)
                    applied = await self._apply(envelope, sub, record, attempt)
                except self.retry.infrastructure_errors as exc:
                    log.warning(
                        "consumer %s: infrastructure error on %s: %r", sub.name, record.topic, exc
                    )
                    span.record_exception(exc)
                    await asyncio.sleep(self.retry.backoff(attempt))
                    raise _InfrastructureFailure from exc
                except Exception as exc:  # noqa: BLE001 - a handler failure, whatever its type
                    span.record_exception(exc)
                    if self.retry.is_transient(exc):
                        # Not the message's fault: wait it out, however long (metrics show it).
                        self.metrics.retried.labels(*labels).inc()
                        self.metrics.stalled.labels(*labels).set(attempt)
                        self.stalled[sub.name] = attempt
                        if attempt % 10 == 0:
                            log.warning(
                                "consumer %s: event %s still failing after %d attempts: %r",
                                sub.name,
                                event_id,
                                attempt,
                                exc,
                            )
                        await asyncio.sleep(self.retry.backoff(attempt))
                        continue
                    if self.retry.is_poison(exc) or attempt >= self.retry.attempts:
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                        log.error(
                            "consumer %s: event %s failed %d times, dead-lettering: %r",
                            sub.name,
                            event_id,
                            attempt,
                            exc,
                        )
                        await self._dead_letter(record, sub.name, exc, "handler", attempt)
                        self.metrics.dead_lettered.labels(*labels).inc()
                        return "dead"
                    self.metrics.retried.labels(*labels).inc()
                    await asyncio.sleep(self.retry.backoff(attempt))
                    continue
                if self.stalled.pop(sub.name, None) is not None:
                    self.metrics.stalled.labels(*labels).set(0)
                if applied:
                    self.metrics.processed.labels(*labels).inc()
                    return "processed"
                span.set_attribute("mmgen.duplicate", True)
                self.metrics.duplicates.labels(*labels).inc()
                return "duplicate"

    def _marker(self, consumer: str, event_id: str, record: Any) -> dict[str, Any]:
        return {
            "_id": processed_marker_id(consumer, event_id),
            "consumer": consumer,
            "event_id": event_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "processed_at": datetime.now(UTC),
        }

    def _context(
        self, session: AsyncClientSession, sub: _Subscription[E], record: Any, attempt: int
    ) -> HandlerContext:
        return HandlerContext(
            session=session,
            db=self.db,
            consumer=sub.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            attempt=attempt,
            headers={
                k: v.decode("utf-8", errors="replace")
                for k, v in (record.headers or ())
                if v is not None
            },
        )

    async def _apply(self, envelope: E, sub: _Subscription[E], record: Any, attempt: int) -> bool:
        """Run the handler and record the event as processed in one transaction.

        Returns False when the event had been applied before (nothing written).
        """
        event_id = str(getattr(envelope, "event_id", ""))
        if not event_id:
            raise PoisonMessageError("envelope has no event_id")
        marker = self._marker(sub.name, event_id, record)

        async def txn(session: AsyncClientSession) -> None:
            # The marker goes first: a duplicate aborts before the handler runs at all.
            try:
                await self.db[PROCESSED_COLLECTION].insert_one(marker, session=session)
            except DuplicateKeyError as exc:
                raise _Duplicate from exc
            if sub.check_versions and not await _advance_stream(
                self.db, session, sub.name, envelope
            ):
                raise _Duplicate
            await sub.handler(envelope, self._context(session, sub, record, attempt))

        async with durable_session(self.db.client) as session:
            try:
                await session.with_transaction(txn)
            except _Duplicate:
                return False
        return True

    # --- batches ------------------------------------------------------------------------------

    async def _process_batch(self, message: Any, sub: _Subscription[E]) -> None:
        """Handle a batch, then commit once; rewind the whole batch if nothing could be done."""
        records = message.raw_message
        if not isinstance(records, tuple):
            records = (records,)
        wanted: list[Any] = []
        for record in records:
            if sub.skips(record):
                self.metrics.skipped.labels(sub.name, record.topic).inc()
            else:
                wanted.append(record)
        if not wanted:
            await message.ack()
            return
        try:
            await self._handle_batch(wanted, sub)
        except _InfrastructureFailure:
            await message.nack()
            return
        except BaseException:
            await message.nack()
            raise
        await message.ack()

    async def _handle_batch(self, records: Sequence[Any], sub: _Subscription[E]) -> None:
        """Apply a batch in ONE transaction; if any handler fails, redo it one by one.

        Already-processed events are filtered out first by one indexed `$in` lookup of their
        markers; the rest are marked and handled in a single transaction (one commit instead
        of one per event). A failure anywhere rolls the whole transaction back, and the batch
        falls back to the per-message path, with its retries and dead letters.
        """
        decoded: list[tuple[Any, E]] = []
        for record in records:
            try:
                decoded.append((record, self.decode(record.value)))
            except Exception:  # noqa: BLE001 - undecodable: the per-message path dead-letters it
                await self._handle_record(record, sub)
        if not decoded:
            return
        ids: dict[str, tuple[Any, E]] = {}
        for record, envelope in decoded:
            marker_id = processed_marker_id(sub.name, str(getattr(envelope, "event_id", "")))
            if marker_id in ids:  # the same event twice in one batch (a republish)
                self.metrics.duplicates.labels(sub.name, record.topic).inc()
            else:
                ids[marker_id] = (record, envelope)
        try:
            done = {
                d["_id"]
                async for d in self.db[PROCESSED_COLLECTION].find(
                    {"_id": {"$in": list(ids)}}, projection={"_id": 1}
                )
            }
        except self.retry.infrastructure_errors as exc:
            await asyncio.sleep(self.retry.backoff(1))
            raise _InfrastructureFailure from exc
        todo: list[tuple[Any, E]] = []
        for marker_id, (record, envelope) in ids.items():
            if marker_id in done:
                self.metrics.duplicates.labels(sub.name, record.topic).inc()
            else:
                todo.append((record, envelope))
        if not todo:
            return
        try:
            applied = await self._apply_batch(todo, sub)
        except self.retry.infrastructure_errors as exc:
            log.warning("consumer %s: infrastructure error on a batch: %r", sub.name, exc)
            await asyncio.sleep(self.retry.backoff(1))
            raise _InfrastructureFailure from exc
        except Exception as exc:  # noqa: BLE001 - some handler failed: isolate it
            log.info("consumer %s: batch failed (%r); handling one by one", sub.name, exc)
            for record, envelope in todo:
                await self._handle_record(record, sub, envelope)
            return
        for (record, _), was_applied in zip(todo, applied, strict=True):
            metric = self.metrics.processed if was_applied else self.metrics.duplicates
            metric.labels(sub.name, record.topic).inc()

    async def _apply_batch(self, todo: list[tuple[Any, E]], sub: _Subscription[E]) -> list[bool]:
        markers = [self._marker(sub.name, str(getattr(e, "event_id", "")), r) for r, e in todo]

        async def txn(session: AsyncClientSession) -> list[bool]:
            await self.db[PROCESSED_COLLECTION].insert_many(markers, session=session)
            if sub.batch_handler is not None:
                await sub.batch_handler(
                    [
                        (envelope, self._context(session, sub, record, 1))
                        for record, envelope in todo
                    ]
                )
                return [True] * len(todo)
            applied: list[bool] = []
            for record, envelope in todo:
                with self._span(record, sub.name):
                    if sub.check_versions and not await _advance_stream(
                        self.db, session, sub.name, envelope
                    ):
                        applied.append(False)
                        continue
                    await sub.handler(envelope, self._context(session, sub, record, 1))
                    applied.append(True)
            return applied

        async with durable_session(self.db.client) as session:
            return await session.with_transaction(txn)

    # --- dead letters -------------------------------------------------------------------------

    async def _dead_letter(
        self, record: Any, consumer: str, exc: BaseException, stage: str, attempts: int
    ) -> None:
        """Publish the original bytes to `<topic>.dlq` with the error (the caller then acks).

        If the dead letter cannot be published the exception propagates, the caller rewinds
        and the message is redelivered rather than lost.
        """
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        headers = {
            k: v.decode("utf-8", errors="replace")
            for k, v in (record.headers or ())
            if v is not None
        }
        headers.update(
            {
                H_ERROR_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
                H_ERROR_MESSAGE: text[:_MAX_ERROR_HEADER],
                H_ERROR_STAGE: stage,
                H_ATTEMPTS: str(attempts),
                H_ORIGINAL_TOPIC: record.topic,
                H_ORIGINAL_PARTITION: str(record.partition),
                H_ORIGINAL_OFFSET: str(record.offset),
                H_CONSUMER: consumer,
                H_FAILED_AT: datetime.now(UTC).isoformat(),
            }
        )
        await self.broker.publish(
            record.value, topic=dlq_topic(record.topic), key=record.key, headers=headers
        )
        trace.get_current_span().add_event("dead-lettered", {"topic": dlq_topic(record.topic)})


async def _advance_stream(
    db: AsyncDatabase[Any], session: AsyncClientSession, consumer: str, envelope: Any
) -> bool:
    """Per-stream version continuity: True if `envelope` is the stream's next version.

    Partitions break global order and a redelivery can bring an old event back; a read model
    folding a stream must see versions 1, 2, 3… exactly once. Lower/equal → already applied
    (False); higher than next → `StreamVersionGapError`.
    """
    stream_id = str(envelope.stream_id)
    version = int(envelope.stream_version)
    key = f"{consumer}:{stream_id}"
    positions = db[STREAM_POSITIONS_COLLECTION]
    doc = await positions.find_one({"_id": key}, session=session)
    last = int(doc["version"]) if doc else 0
    if version <= last:
        return False
    if version != last + 1:
        raise StreamVersionGapError(
            f"stream {stream_id}: got version {version}, expected {last + 1}"
        )
    await positions.update_one(
        {"_id": key}, {"$set": {"version": version}}, upsert=True, session=session
    )
    return True


def dlq_error(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str | None]:
    """The error details a dead letter carries (for repair tools and tests)."""
    return {
        "type": header_value(headers, H_ERROR_TYPE),
        "message": header_value(headers, H_ERROR_MESSAGE),
        "stage": header_value(headers, H_ERROR_STAGE),
        "attempts": header_value(headers, H_ATTEMPTS),
        "original_topic": header_value(headers, H_ORIGINAL_TOPIC),
        "original_offset": header_value(headers, H_ORIGINAL_OFFSET),
    }

"""Outbox relay: publishes a service's event store to `<producer>.events`, in `producer_seq` order.

Guarantees (DESIGN.md "The event kernel", pitfalls):
- at-least-once, nothing skipped: the checkpoint (last published `producer_seq`, in the
  service's own database) moves only after the broker acked every message up to it (acks=all);
  a crash between the ack and the checkpoint write republishes, never loses;
- order: events are read by `producer_seq` in bounded windows (`read_range`) and the relay
  STOPS AT A HOLE (a missing sequence number) instead of skipping it; within one key the
  partition keeps that order (aiokafka keeps one request in flight per broker). That loop is
  the checkpointed `Tailer` (mmgen.events.tailer): its sink sends to Kafka, its checkpoint is
  the lease document;
- one relay per service at a time: a lease with an epoch. Taking the lease over bumps the
  epoch; every checkpoint write is conditioned on (owner, epoch), so a stale relay (paused,
  partitioned) is fenced out the moment it tries to advance, and stops;
- woken by the store's `wait_for_append` (a local commit signal, a change stream, or polling):
  a wake-up only makes it read by sequence, so a lost or expired resume token costs latency,
  never events.

Each event's publish span is a child of the trace the append was made in (the envelope's
`traceparent`), and the message carries the publish span as its `traceparent` header.

Copies (`TopicCopy`): events of given types go, besides the events topic, to a second topic
as well — retention's commands are events of its own store (so the audit log sees them on
`retention.events` like every event, `producer_seq` unbroken) that every service must also
read on `retention.commands`. Both sends belong to the same round: the checkpoint moves only
after the broker acked the events topic AND every copy; a republish sends the copies again
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from mmgen.events.concerns import durable
from mmgen.events.errors import EventsError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity
from mmgen.events.tailer import StoreSource, Tailer, TailerFencedError, TailerMetrics, TailerStatus
from mmgen.events.topics import ensure_topics
from mmgen.events.tracing import context_from_traceparent, inject_headers, tracer

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from mmgen.events.envelope import Envelope
    from mmgen.events.store import EventStore

log = logging.getLogger(__name__)

RELAY_COLLECTION = "relay_state"
MAX_REQUEST_SIZE = 1024 * 1024  # 1 MiB: production Kafka's default; Tansu has no limit

PRODUCER_RECOVERY_CONFIG: dict[str, Any] = {
    "metadata_max_age_ms": 2_000,
    "request_timeout_ms": 10_000,
}
"""For every producer whose messages must not vanish (relays, the audit feed): topic metadata
ages out in 2 s (aiokafka: 5 minutes) and a produce request gives up after 10 s (aiokafka: 40 s).

After the local broker restarted empty, a producer still holding the old metadata writes to
partitions, or a topic, the new broker does not list — and Tansu acks those writes, so no error
makes the client refresh and the messages vanish until the metadata expires (real Kafka refuses
them, which refreshes it). A request the restarted broker never answered held a relay for the
whole request timeout. On real Kafka the cost is one small metadata request per 2 s."""
_RECORD_OVERHEAD = 512  # record and batch framing, generously

# Header names every published event carries (consumers can route without decoding).
H_EVENT_TYPE = "event_type"
H_SCHEMA_VERSION = "schema_version"
H_EVENT_ID = "event_id"
H_PRODUCER = "producer"
H_PRODUCER_SEQ = "producer_seq"


class RelayError(EventsError):
    """Base of the relay's errors."""


class RelayMessageTooLargeError(RelayError):
    """An event does not fit one Kafka request (1 MiB): the relay stops there, never skips it."""


class RelayFencedError(RelayError, TailerFencedError):
    """Another relay took the lease (a higher epoch): this one must stop publishing."""


@dataclass(frozen=True)
class TopicCopy:
    """Events whose type is in `event_types` are also published to `topic` (same message)."""

    topic: str
    event_types: frozenset[str]

    def __post_init__(self) -> None:
        if not self.topic or not self.event_types:
            raise RelayError("a topic copy names its topic and at least one event type")


@dataclass(frozen=True)
class RelaySettings:
    """Tuning of one relay; the defaults suit a service, tests shorten the lease."""

    window: int = 2_000
    """Events read (and published as one batch) per round; bounded by the store's window."""
    idle_wait_s: float = 1.0
    """Longest wait for an append before looking again (the polling fallback)."""
    hole_retry_s: float = 0.2
    """Pause before re-reading when a sequence number is missing."""
    lease_ttl_s: float = 10.0
    """How long a lease lasts without renewal; a successor waits at most this long."""
    error_backoff_s: float = 0.5
    max_error_backoff_s: float = 10.0
    producer_config: dict[str, Any] = field(default_factory=dict)
    """Extra `AIOKafkaProducer` options (linger, batch size, security)."""


@dataclass
class RelayStatus:
    """What the relay knows about itself (for `/readyz` and tests).

    The lease is the relay's own; position, hole and progress are its tailer's (`tail`).
    """

    owner: str
    holds_lease: bool = False
    epoch: int = 0
    tail: TailerStatus = field(default_factory=lambda: TailerStatus(name="relay", checkpoint=0))

    @property
    def checkpoint(self) -> int:
        """Last `producer_seq` published and checkpointed."""
        return self.tail.checkpoint

    @checkpoint.setter
    def checkpoint(self, value: int) -> None:
        """Move the position in memory (tests and tools; the lease document keeps its own)."""
        self.tail.checkpoint = value

    @property
    def published(self) -> int:
        """Events published (and checkpointed) by this instance."""
        return self.tail.applied

    @property
    def hole_at(self) -> int | None:
        """The missing `producer_seq` the relay waits for, if any."""
        return self.tail.hole_at

    @property
    def last_error(self) -> str | None:
        return self.tail.last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self.tail.last_error = value


@dataclass(frozen=True)
class RepublishResult:
    """Outcome of `republish`: how many events went out, which numbers the store lacks."""

    published: int
    missing: list[int]


class RelayMetrics(TailerMetrics):
    """Prometheus metrics of the relay; pass a registry to keep tests and apps apart.

    Its tailer's metrics under the relay's names, labelled by producer:
    `relay_published` (events acked and checkpointed), `relay_checkpoint`, `relay_hole_at`
    (0: no hole), `relay_errors`; plus `relay_republished`.
    """

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "mmgen") -> None:
        super().__init__(
            registry, namespace, prefix="relay", label="producer", applied_name="published"
        )
        self.published = self.applied
        kwargs: dict[str, Any] = {"namespace": namespace, "subsystem": "events"}
        if registry is not None:
            kwargs["registry"] = registry
        self.republished = Counter(
            "relay_republished", "Events published again on request", ["producer"], **kwargs
        )


class CachedKeyPartitioner:
    """Kafka's default key → partition mapping (murmur2, as the Java client), memoised per key.

    aiokafka's murmur2 is pure Python (~10 µs a key) and a subject issues many events, so the
    relay's hot loop hashes each key once. Keyless messages go to a random partition as usual.
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]


def default_owner() -> str:
    """A relay instance id: host, pid and a random part (a restarted process is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def message_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Kafka headers of an event, without trace context (added per publish span)."""
    return [
        (H_EVENT_TYPE, envelope.event_type.encode()),
        (H_SCHEMA_VERSION, str(envelope.schema_version).encode()),
        (H_EVENT_ID, envelope.event_id.encode()),
        (H_PRODUCER, envelope.producer.encode()),
        (H_PRODUCER_SEQ, str(envelope.producer_seq).encode()),
    ]


class LeaseStore:
    """The relay's lease and checkpoint: one document per producer in the service's database.

    `{_id: producer, owner, epoch, lease_until, checkpoint}`. Every write that matters is
    conditioned on `(owner, epoch)`; a relay that loses that match has been fenced out.
    Lease times come from the relay's clock: keep `lease_ttl_s` well above clock skew.
    """

    def __init__(self, db: AsyncDatabase[Any], producer: str) -> None:
        self.collection = durable(db[RELAY_COLLECTION])
        self.producer = producer

    async def acquire(self, owner: str, ttl_s: float) -> tuple[int, int] | None:
        """Take the lease if it is free or expired: returns (epoch, checkpoint), else None."""
        now = datetime.now(UTC)
        try:
            doc = await self.collection.find_one_and_update(
                {
                    "_id": self.producer,
                    "$or": [{"lease_until": {"$lt": now}}, {"owner": None}, {"owner": owner}],
                },
                {
                    "$set": {"owner": owner, "lease_until": now + timedelta(seconds=ttl_s)},
                    "$inc": {"epoch": 1},
                    "$setOnInsert": {"checkpoint": 0},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # the document exists and its lease is held by someone else
        if doc is None:
            return None
        return int(doc["epoch"]), int(doc.get("checkpoint", 0))

    async def renew(self, owner: str, epoch: int, ttl_s: float) -> bool:
        until = datetime.now(UTC) + timedelta(seconds=ttl_s)
        result = await self.collection.update_one(
            {"_id": self.producer, "owner": owner, "epoch": epoch},
            {"$set": {"lease_until": until}},
        )
        return result.matched_count == 1

    async def advance(self, owner: str, epoch: int, checkpoint: int, ttl_s: float) -> bool:
        """Move the checkpoint forward (never back) and renew; False if fenced out."""
        until = datetime.now(UTC) + timedelta(seconds=ttl_s)
        result = await self.collection.update_one(
            {"_id": self.producer, "owner": owner, "epoch": epoch},
            {"$max": {"checkpoint": checkpoint}, "$set": {"lease_until": until}},
        )
        return result.matched_count == 1

    async def release(self, owner: str, epoch: int) -> None:
        """Let a successor take over at once (graceful stop)."""
        await self.collection.update_one(
            {"_id": self.producer, "owner": owner, "epoch": epoch},
            {"$set": {"owner": None, "lease_until": datetime.now(UTC)}},
        )

    async def state(self) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": self.producer})


class ChangeStreamWake:
    """Wakes a relay as soon as any process inserts into the events collection.

    A wake-up only makes the relay read by sequence; no resume token is kept on purpose (on
    SecantusDB a token can expire or silently resume to nothing). If the stream fails it is
    reopened after a pause, and the relay's polling covers the meantime.
    """

    def __init__(self, collection: Any, *, reopen_after_s: float = 1.0) -> None:
        self.collection = collection
        self.reopen_after_s = reopen_after_s
        self.open = False
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` on every insert seen (a tailer's `notify`)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="relay-change-stream")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.open = False

    async def wait(self) -> None:
        """Return at the next insert seen after this call started."""
        self._event.clear()
        await self._event.wait()

    async def _watch(self) -> None:
        pipeline = [{"$match": {"operationType": "insert"}}]
        while True:
            try:
                async with await self.collection.watch(pipeline) as stream:
                    self.open = True
                    async for _ in stream:
                        self._event.set()
                        for listener in self._listeners:
                            listener()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling covers while the stream is down
                log.warning("relay change stream failed (%r); polling until it reopens", exc)
            self.open = False
            await asyncio.sleep(self.reopen_after_s)


class LeaseCheckpoint:
    """The relay's tailer checkpoint: the lease document, every save fenced by (owner, epoch).

    `load` answers the checkpoint the lease was taken at (or last advanced to); `save` moves
    it with `LeaseStore.advance`, which also renews the lease, and answers False once another
    relay holds it.
    """

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self.value = 0

    async def load(self) -> int:
        return self.value

    async def save(self, seq: int) -> bool:
        relay = self._relay
        if not await relay.leases.advance(
            relay.status.owner, relay.status.epoch, seq, relay.settings.lease_ttl_s
        ):
            return False
        relay._lease_renewed_at = time.monotonic()
        self.value = max(self.value, seq)
        return True


class Relay:
    """Publishes one producer's event store to its events topic.

    Run `await relay.run()` as a task in the service (it returns after `stop()`), or drive it
    step by step with `acquire()` + `publish_next()` (tests, one-shot tools).

    Wake-ups: `wait_for_append` (default: the store's, which a commit in this process fires
    and which polls `last_seq` otherwise), plus, with `change_stream` (the events collection),
    a change stream that wakes it on inserts from any process. `idle_wait_s` bounds the wait.

    With `partitions`, the relay creates its topic with that count before publishing, and
    again after any failed round: a restarted local broker has lost every topic, and one
    auto-created by a producer gets the broker's default count instead.

    With `copies`, events of the listed types also go to each copy's topic, in the same round
    (see the module docstring).
    """

    def __init__(
        self,
        store: EventStore,
        db: AsyncDatabase[Any],
        bootstrap: str,
        topic: str,
        *,
        settings: RelaySettings | None = None,
        owner: str | None = None,
        wait_for_append: Callable[[int, float], Awaitable[int]] | None = None,
        change_stream: Any | None = None,
        partitions: int | None = None,
        metrics: RelayMetrics | None = None,
        registry: CollectorRegistry | None = None,
        copies: Sequence[TopicCopy] = (),
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.store = store
        self.security = security
        self.producer_name = store.producer
        self.topic = topic
        self.copies = tuple(copies)
        if any(copy.topic == topic for copy in self.copies):
            raise RelayError(f"a copy cannot go to the events topic {topic} itself")
        self.bootstrap = bootstrap
        self.settings = settings or RelaySettings()
        self.leases = LeaseStore(db, self.producer_name)
        self._wake = ChangeStreamWake(change_stream) if change_stream is not None else None
        self._partitions = partitions
        self._topic_checked = False
        self.metrics = metrics or RelayMetrics(registry)
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._partitioner = CachedKeyPartitioner()
        self._lease_renewed_at = 0.0
        self._lease_checkpoint = LeaseCheckpoint(self)
        self.tailer: Tailer[Envelope] = Tailer(
            self.producer_name,
            StoreSource(store, wait_for_append=wait_for_append),
            self._lease_checkpoint,
            self._publish,
            window=self.settings.window,
            idle_wait_s=min(self.settings.idle_wait_s, self.settings.lease_ttl_s / 3),
            hole_retry_s=self.settings.hole_retry_s,
            error_backoff_s=self.settings.error_backoff_s,
            max_error_backoff_s=self.settings.max_error_backoff_s,
            metrics=self.metrics,
            after_wait=self._renew_if_due,  # an idle spell or a hole can outlast the lease
        )
        self._window = self.tailer.window
        self.status = RelayStatus(owner=owner or default_owner(), tail=self.tailer.status)
        if self._wake is not None:
            self._wake.subscribe(self.tailer.notify)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the Kafka producer (acks=all, 1 MiB requests, no idempotence: Tansu lacks it)."""
        if self._producer is not None:
            return
        config: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": False,
            "max_request_size": MAX_REQUEST_SIZE,
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
            "client_id": f"relay-{self.producer_name}",
            **PRODUCER_RECOVERY_CONFIG,
        }
        config.update(self.settings.producer_config)
        config.update(self.security.client_config())
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **config)
        await producer.start()
        self._producer = producer

    async def close(self) -> None:
        """Flush and disconnect the producer (does not touch the lease)."""
        self.tailer.discard_read_ahead()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def stop(self) -> None:
        """Ask `run()` to finish its round, release the lease and return."""
        self._stopping.set()
        await self.tailer.stop()

    async def run(self) -> None:
        """Relay until `stop()`: take the lease, then run the tailer until fenced or stopped.

        Errors (broker or database unreachable) are logged and retried with backoff, by the
        tailer while it holds the lease and here otherwise; the checkpoint only ever covers
        acked events, so a retry republishes at worst.
        """
        await self.start()
        if self._wake is not None:
            await self._wake.start()
        backoff = self.settings.error_backoff_s
        try:
            while not self._stopping.is_set():
                try:
                    await self._ensure_topic()
                    if not self.status.holds_lease and not await self.acquire():
                        await self._pause(self.settings.lease_ttl_s / 4)
                        continue
                    backoff = self.settings.error_backoff_s
                    await self.tailer.run()
                    break  # the tailer returns only once stopped
                except TailerFencedError:
                    log.warning("relay %s of %s fenced out", self.status.owner, self.producer_name)
                    self.status.holds_lease = False
                except Exception as exc:  # any failure: log, back off and retry
                    self.status.last_error = repr(exc)
                    self.metrics.errors.labels(self.producer_name).inc()
                    self._topic_checked = False
                    log.exception("relay %s: round failed, retrying", self.producer_name)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self.settings.max_error_backoff_s)
        finally:
            if self._wake is not None:
                await self._wake.stop()
            if self.status.holds_lease:
                with contextlib.suppress(Exception):
                    await self.leases.release(self.status.owner, self.status.epoch)
                self.status.holds_lease = False
            await self.close()

    async def _ensure_topic(self) -> None:
        if self._partitions is None or self._topic_checked:
            return
        topics = [self.topic, *(copy.topic for copy in self.copies)]
        counts = await ensure_topics(
            self.bootstrap, topics, self._partitions, check_partitions=False
        )
        for topic in topics:
            if counts.get(topic) != self._partitions:
                log.warning(
                    "topic %s has %s partitions, expected %d (auto-created?)",
                    topic,
                    counts.get(topic),
                    self._partitions,
                )
        self._topic_checked = True

    async def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early on stop. `asyncio.timeout` rather than
        `wait_for`: on 3.11, `wait_for` can swallow a cancellation that races its timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _renew_if_due(self) -> None:
        if time.monotonic() - self._lease_renewed_at < self.settings.lease_ttl_s / 3:
            return
        if not await self.leases.renew(
            self.status.owner, self.status.epoch, self.settings.lease_ttl_s
        ):
            self.status.holds_lease = False
            raise RelayFencedError(f"lease of {self.producer_name} lost")
        self._lease_renewed_at = time.monotonic()

    # --- steps ------------------------------------------------------------------------------

    async def acquire(self) -> bool:
        """Try to take the lease; on success resume from the persisted checkpoint."""
        got = await self.leases.acquire(self.status.owner, self.settings.lease_ttl_s)
        if got is None:
            return False
        self.status.epoch, self._lease_checkpoint.value = got
        await self.tailer.load()
        self.status.holds_lease = True
        self._lease_renewed_at = time.monotonic()
        log.info(
            "relay %s took the lease of %s (epoch %d) at checkpoint %d",
            self.status.owner,
            self.producer_name,
            self.status.epoch,
            self.status.checkpoint,
        )
        return True

    async def publish_next(self) -> int:
        """Publish the next window after the checkpoint, up to any hole; returns events sent.

        One tailer step: reads `[checkpoint + 1, checkpoint + 1 + window)`, keeps the
        contiguous run starting at `checkpoint + 1`, publishes it, waits for every ack, then
        advances the checkpoint (fenced). Raises `RelayFencedError` if another relay holds
        the lease now.
        """
        if not self.status.holds_lease:
            raise RelayFencedError("relay does not hold the lease")
        try:
            return await self.tailer.step()
        except RelayFencedError:
            raise
        except TailerFencedError as exc:
            self.status.holds_lease = False
            raise RelayFencedError(
                f"lease of {self.producer_name} taken over; stopping at {self.status.checkpoint}"
            ) from exc

    async def _publish(self, events: Sequence[Envelope]) -> None:
        """The tailer's sink: one contiguous run to the topic, every message acked."""
        await self._ensure_topic()
        try:
            await self._send(events)
        except Exception:
            self._topic_checked = False  # a restarted broker may have lost the topic
            raise

    async def _send(self, events: Sequence[Envelope]) -> None:
        """Send a batch and wait until the broker acked all of it (any failure raises).

        Messages are packed into one record batch per topic and partition (aiokafka
        `send_batch`): one future per batch instead of per message, which is most of the
        relay's speed. Batches of a partition are queued in call order, so per-key order is
        kept — on the events topic and on every copy's topic alike.
        """
        producer = self._producer
        if producer is None:
            raise RelayError("relay not started")
        targets = [(self.topic, None), *((c.topic, c.event_types) for c in self.copies)]
        partitions = {topic: sorted(await producer.partitions_for(topic)) for topic, _ in targets}
        builders: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for envelope in events:
            key, value, headers = self._message(envelope)
            for topic, types in targets:
                if types is not None and envelope.event_type not in types:
                    continue
                partition = self._partitioner(key, partitions[topic], partitions[topic])
                builder = builders.get((topic, partition))
                if builder is None:
                    builder = builders[(topic, partition)] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    builder = builders[(topic, partition)] = producer.create_batch()
                    builder.append(key=key, value=value, timestamp=None, headers=headers)
        for (topic, partition), builder in builders.items():
            futures.append(await producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*futures)

    def _message(self, envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Key, value and headers of one event (its publish span continues the append's trace);
        refuses an event larger than one Kafka request."""
        headers = message_headers(envelope)
        if envelope.traceparent:
            # Continue the trace the append was made in; the message carries this span.
            with tracer().start_as_current_span(
                f"{self.topic} publish",
                context=context_from_traceparent(envelope.traceparent),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topic,
                    "messaging.message.id": envelope.event_id,
                    "mmgen.producer_seq": envelope.producer_seq or 0,
                },
            ):
                headers = inject_headers(headers)
        key, value = envelope.kafka_key(), envelope.to_wire()
        size = len(key) + len(value) + sum(len(k) + len(v) for k, v in headers)
        if size + _RECORD_OVERHEAD > MAX_REQUEST_SIZE:
            raise RelayMessageTooLargeError(
                f"event {envelope.event_id} (seq {envelope.producer_seq}) is {size} bytes, "
                f"over the {MAX_REQUEST_SIZE}-byte request limit"
            )
        return key, value, headers

    async def last_seq(self) -> int:
        """The highest `producer_seq` committed to the store (what `republish` can serve)."""
        return await self.store.last_seq()

    async def republish(self, from_seq: int, to_seq: int) -> RepublishResult:
        """Publish `from_seq..to_seq` (both included) again, for gap repair downstream (copies
        included, like every round).

        Does not need the lease nor move the checkpoint: consumers are idempotent, so a
        duplicate is harmless. Numbers the store does not have are reported, not invented.
        """
        if from_seq < 1 or to_seq < from_seq:
            raise RelayError(f"bad range {from_seq}..{to_seq}")
        owns_producer = self._producer is None
        await self.start()
        published, missing = 0, list[int]()
        try:
            seq = from_seq
            while seq <= to_seq:
                end = min(to_seq + 1, seq + self._window)
                events = await self.store.read_range(seq, end)
                have = {e.producer_seq for e in events}
                missing.extend(n for n in range(seq, end) if n not in have)
                if events:
                    await self._send(events)
                    published += len(events)
                seq = end
        finally:
            if owns_producer:
                await self.close()
        self.metrics.republished.labels(self.producer_name).inc(published)
        return RepublishResult(published=published, missing=missing)

"""Gap repair across services: republish requests on a topic, served by each producer's relay.

The audit projector tracks, per producer, the highest contiguous `producer_seq` it holds. A
hole that stays open (a broker that lost data, a skipped message) becomes a request
`{producer, from_seq, to_seq}` on `<prefix>audit.republish`. Every service runs a
`RepublishListener` beside its relay: it reads the requests naming its producer and calls
`Relay.republish(from_seq, to_seq)`, which reads its own event store and publishes the range
again (consumers are idempotent, so duplicates are harmless). A topic rather than an HTTP
endpoint: the audit projector needs no address book nor service credentials, a request made
while the producer is down is served when it comes back, and a new service gets repair by
wiring the kernel, with no change to the projector.

The audit log itself is repaired the same way: its readers (retention's audit feed) name the
reserved producer `AUDIT_LOG_PRODUCER` and consent, which keeps the log, serves the range from
its audit store with a listener of its own (any `RepublishServer`, not only a relay).

Requests are small JSON documents; a malformed one is logged and skipped (it cannot be
served and must not stall the partition).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mmgen.events.errors import EventsError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity

if TYPE_CHECKING:
    from mmgen.events.relay import RepublishResult

log = logging.getLogger(__name__)

REPUBLISH_TOPIC = "audit.republish"
AUDIT_LOG_PRODUCER = "audit.log"
"""The producer name of the audit log's own entries (`audit.log`, numbered from 0). A service's
name never holds a dot (topics are `<service>.events`, event types `<service>.<Type>`), so no
service can be called this."""
MAX_RANGE = 1_000_000
"""Largest range one request may ask for (a bound on the work one message can cause)."""


class RepublishRequestInvalidError(EventsError):
    """A republish request that is not `{producer, from_seq, to_seq}` with first <= from <= to
    (first: 1 for a service's `producer_seq`, 0 for the audit log's `seq`)."""


def first_seq_of(producer: str) -> int:
    """The lowest number `producer` gives out: the audit log counts from 0, services from 1."""
    return 0 if producer == AUDIT_LOG_PRODUCER else 1


def republish_topic(prefix: str = "") -> str:
    """`<prefix>audit.republish`: where gap-repair requests go (prefix as `Topics`)."""
    return f"{prefix}{REPUBLISH_TOPIC}"


@dataclass(frozen=True)
class RepublishRequest:
    """Ask `producer` to publish `from_seq..to_seq` (inclusive) of its event store again."""

    producer: str
    from_seq: int
    to_seq: int
    request_id: str = ""
    requested_by: str = "audit"

    def __post_init__(self) -> None:
        if not self.producer or not isinstance(self.producer, str):
            raise RepublishRequestInvalidError("producer must be a non-empty string")
        for name in ("from_seq", "to_seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise RepublishRequestInvalidError(f"{name} must be an integer")
        if not first_seq_of(self.producer) <= self.from_seq <= self.to_seq:
            raise RepublishRequestInvalidError(f"bad range {self.from_seq}..{self.to_seq}")
        if self.to_seq - self.from_seq + 1 > MAX_RANGE:
            raise RepublishRequestInvalidError(f"range larger than {MAX_RANGE}")

    @classmethod
    def chunked(
        cls, producer: str, from_seq: int, to_seq: int, **fields: Any
    ) -> list[RepublishRequest]:
        """Requests covering `from_seq..to_seq` in ranges of at most `MAX_RANGE` each.

        A hole wider than one request is asked for piece by piece, never refused: a refusal
        inside the loop over producers would stop every other producer's repair too.
        """
        return [
            cls(producer, start, min(to_seq, start + MAX_RANGE - 1), **fields)
            for start in range(from_seq, to_seq + 1, MAX_RANGE)
        ]

    def to_wire(self) -> bytes:
        return json.dumps(
            {
                "request_id": self.request_id or str(uuid.uuid4()),
                "producer": self.producer,
                "from_seq": self.from_seq,
                "to_seq": self.to_seq,
                "requested_by": self.requested_by,
            }
        ).encode("utf-8")

    @classmethod
    def from_wire(cls, raw: bytes) -> RepublishRequest:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RepublishRequestInvalidError("not JSON") from exc
        if not isinstance(obj, dict):
            raise RepublishRequestInvalidError("not a JSON object")
        return cls(
            producer=obj.get("producer"),  # type: ignore[arg-type]
            from_seq=obj.get("from_seq"),  # type: ignore[arg-type]
            to_seq=obj.get("to_seq"),  # type: ignore[arg-type]
            request_id=str(obj.get("request_id") or ""),
            requested_by=str(obj.get("requested_by") or ""),
        )


async def send_republish_request(
    producer: AIOKafkaProducer, topic: str, request: RepublishRequest
) -> None:
    """Publish a request (keyed by producer: one producer's requests stay in order).

    The producer's metadata is refreshed first (requests are rare, a metadata round trip is
    cheap): after the local broker restarted empty, metadata from before the restart sends the
    request to a partition the new topic lacks, which Tansu acks and loses — every repeat of it
    too, the key being the same — until the metadata expires (5 minutes by default).
    """
    await producer.client.force_metadata_update()
    await producer.send_and_wait(topic, request.to_wire(), key=request.producer.encode("utf-8"))


class RepublishServer(Protocol):
    """What publishes one producer's numbers again: a service's `Relay`, consent's audit log."""

    @property
    def producer_name(self) -> str: ...

    async def last_seq(self) -> int:
        """The highest number given out so far (a request beyond it has nothing to serve)."""
        ...

    async def republish(self, from_seq: int, to_seq: int) -> RepublishResult:
        """Publish `from_seq..to_seq` (inclusive) again; numbers it lacks are reported."""
        ...


class RepublishListener:
    """Serves republish requests for one producer with its server (a service's relay, run
    beside it; consent's audit log, run with the log's writer).

    Its consumer group is `<group_prefix><producer>` (or `group_id`): each service reads every
    request once (one instance of the service serves it) and ignores other producers' requests.
    """

    def __init__(
        self,
        relay: RepublishServer,
        bootstrap: str,
        *,
        topic_prefix: str = "",
        group_prefix: str = "republish-",
        group_id: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.relay = relay
        self.producer = relay.producer_name
        self.bootstrap = bootstrap
        self.topic = republish_topic(topic_prefix)
        self.group_id = group_id or f"{group_prefix}{self.producer}"
        self._consumer_kwargs = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            **security.client_config(),
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.served: list[RepublishResult] = []
        self.last_error: str | None = None

    async def start(self) -> None:
        """Join the group and serve requests in a background task."""
        if self._task is not None:
            return
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self._consumer_kwargs,
        )
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=f"republish-{self.producer}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=100)
                for records in batches.values():
                    for record in records:
                        await self.handle(record.value)
                if batches:
                    await consumer.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or store trouble: retry the same requests
                self.last_error = repr(exc)
                log.exception("republish listener of %s failed; retrying", self.producer)
                # The fetch position is past the whole batch: go back to the last commit, so
                # the failed request and the rest of its batch are served on the next round.
                with contextlib.suppress(Exception):
                    await consumer.seek_to_committed()
                await asyncio.sleep(1.0)

    async def handle(self, raw: bytes | None) -> RepublishResult | None:
        """Serve one request if it names this producer (others are not ours: ignored)."""
        try:
            request = RepublishRequest.from_wire(raw or b"")
        except RepublishRequestInvalidError as exc:
            log.warning("republish request skipped: %s", exc)
            return None
        if request.producer != self.producer:
            return None
        last = await self.relay.last_seq()
        if request.from_seq > last:
            return None  # nothing that high was ever committed here
        result = await self.relay.republish(request.from_seq, min(request.to_seq, last))
        log.info(
            "republished %s %d..%d for %s: %d events, %d missing",
            self.producer,
            request.from_seq,
            request.to_seq,
            request.requested_by,
            result.published,
            len(result.missing),
        )
        self.served.append(result)
        del self.served[:-100]
        return result


__all__ = [
    "AUDIT_LOG_PRODUCER",
    "REPUBLISH_TOPIC",
    "RepublishListener",
    "RepublishRequest",
    "RepublishRequestInvalidError",
    "RepublishServer",
    "first_seq_of",
    "republish_topic",
    "send_republish_request",
]

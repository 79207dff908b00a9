"""Producers announce their head: how a consumer learns of events lost after the last one it saw.

A consumer that checks `producer_seq` continuity (the audit projector) sees a hole only when a
later event arrives. If the broker loses a producer's last events (the local broker keeps
nothing across a restart; a broker may ack into a partition it no longer has) and the
producer then goes quiet, no later event ever comes. So each relay's process announces
`{producer, last_seq}` — the last sequence number its relay published and checkpointed — on
`events.heads`, whenever the checkpoint moves and at least every `idle_interval_s` when
nothing happens; a consumer treats `last_seq` above what it holds as a hole, and repairs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from mmgen.events.errors import EventsError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

HEADS_TOPIC = "events.heads"


class HeadAnnouncementInvalidError(EventsError):
    """Bytes that are not a head announcement."""


def heads_topic(prefix: str = "") -> str:
    return f"{prefix}{HEADS_TOPIC}"


@dataclass(frozen=True)
class HeadAnnouncement:
    producer: str
    last_seq: int

    def to_wire(self) -> bytes:
        return json.dumps(
            {
                "producer": self.producer,
                "last_seq": self.last_seq,
                "at": datetime.now(UTC).isoformat(),
            }
        ).encode()

    @classmethod
    def from_wire(cls, raw: bytes | None) -> HeadAnnouncement:
        try:
            obj = json.loads(raw or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HeadAnnouncementInvalidError("not JSON") from exc
        if not isinstance(obj, dict):
            raise HeadAnnouncementInvalidError("not a JSON object")
        producer, last = obj.get("producer"), obj.get("last_seq")
        if not isinstance(producer, str) or not 0 < len(producer) <= 256:
            raise HeadAnnouncementInvalidError("producer must be a non-empty string")
        if isinstance(last, bool) or not isinstance(last, int) or last < 0:
            raise HeadAnnouncementInvalidError("last_seq must be a non-negative integer")
        return cls(producer, last)


class HeadAnnouncer:
    """Announces `checkpoint()` for `producer` when it moves, and every `idle_interval_s`.

    `checkpoint` returns the relay's published-and-checkpointed position, or None while this
    process does not hold the relay's lease (only the relay's holder speaks for the producer).
    """

    def __init__(
        self,
        producer: str,
        bootstrap: str,
        topic: str,
        checkpoint: Callable[[], int | None],
        *,
        idle_interval_s: float = 30.0,
        check_interval_s: float = 0.5,
        producer_config: dict[str, object] | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.producer = producer
        self.bootstrap = bootstrap
        self.topic = topic
        self.checkpoint = checkpoint
        self.idle_interval_s = idle_interval_s
        self.check_interval_s = check_interval_s
        self._config = {**(producer_config or {}), **security.client_config()}
        self._task: asyncio.Task[None] | None = None
        self.announced: int | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"heads-{self.producer}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=False,
            client_id=f"heads-{self.producer}",
            **self._config,
        )
        started = False
        last_sent_at = 0.0
        try:
            while True:
                try:
                    if not started:
                        await producer.start()
                        started = True
                    seq = self.checkpoint()
                    due = loop.time() - last_sent_at >= self.idle_interval_s
                    if seq is not None and (seq != self.announced or due):
                        await producer.send_and_wait(
                            self.topic,
                            HeadAnnouncement(self.producer, seq).to_wire(),
                            key=self.producer.encode(),
                        )
                        self.announced, last_sent_at = seq, loop.time()
                        self.last_error = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the broker is away: try again later
                    self.last_error = repr(exc)
                    log.warning("head announcement of %s failed: %r", self.producer, exc)
                await asyncio.sleep(self.check_interval_s)
        finally:
            if started:
                with contextlib.suppress(Exception):
                    await producer.stop()

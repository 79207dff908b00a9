"""Producers' announced heads (`events.heads`), so the log repairs holes at a producer's tail.

The projector sees a hole below the highest `producer_seq` it holds; events lost after the
last one it received leave no trace in what it holds. Each service's relay announces the last
`producer_seq` it published (`mmgen.events.heads`); this watcher keeps the highest
announcement per producer (`announced` in its continuity document). When `announced` is
above the highest number held, the gap watcher asks for `highest + 1 .. announced` like any
other hole, and readiness shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from mmgen.events.heads import HeadAnnouncement, HeadAnnouncementInvalidError
from mmgen.events.kafka_security import PLAINTEXT, KafkaSecurity

if TYPE_CHECKING:
    from mmgen.consent.audit.store import MongoAuditStore

log = logging.getLogger(__name__)


class HeadWatcher:
    """Consumes `events.heads` into the store's per-producer `announced` positions."""

    def __init__(
        self,
        store: MongoAuditStore,
        bootstrap: str,
        topic: str,
        *,
        group_id: str,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        metadata_max_age_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self._consumer_config = {
            "group_id": group_id,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "metadata_max_age_ms": metadata_max_age_ms,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            **security.client_config(),
        }
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self._consumer_config,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer), name="audit-heads")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    highest: dict[str, int] = {}
                    for records in batches.values():
                        for record in records:
                            try:
                                head = HeadAnnouncement.from_wire(record.value)
                            except HeadAnnouncementInvalidError as exc:
                                log.warning("head announcement skipped: %s", exc)
                                continue
                            highest[head.producer] = max(
                                highest.get(head.producer, 0), head.last_seq
                            )
                    for producer, last_seq in highest.items():
                        await self.store.note_announced(producer, last_seq)
                    if batches:
                        await consumer.commit()
                    self.last_error = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the broker or the store is away
                    self.last_error = repr(exc)
                    log.warning("audit head watcher failed (%r); retrying", exc)
                    with contextlib.suppress(Exception):
                        await consumer.seek_to_committed()
                    await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

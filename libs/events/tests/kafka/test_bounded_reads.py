"""Every database read of the relay and the consumer runtime is by key or a bounded window on
an indexed field (SecantusDB applies `limit` late: an open-ended query scans everything)."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient, monitoring

from mmgen.events.consumer import EventConsumer, HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.topics import Topics, dlq_topic, ensure_topics


class CommandRecorder(monitoring.CommandListener):
    """Every read or conditional write this client sends, with its filter."""

    def __init__(self) -> None:
        self.filters: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cmd = event.command
        name = event.command_name
        if name in {"find", "findAndModify", "count"}:
            self.filters.append((name, dict(cmd.get("filter", cmd.get("query", {})))))
        elif name in {"update", "delete"}:
            for op in cmd.get("updates", cmd.get("deletes", [])):
                self.filters.append((name, dict(op.get("q", {}))))
        elif name == "aggregate":
            stages = [next(iter(stage)) for stage in cmd.get("pipeline", [])]
            if "$changeStream" not in stages:  # a change stream reads no documents
                self.filters.append((name, {"pipeline": stages}))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def bounded(flt: dict[str, Any]) -> bool:
    if "_id" in flt:
        return True
    window = flt.get("producer_seq")
    return isinstance(window, dict) and "$gte" in window and "$lt" in window


async def test_relay_and_consumer_read_only_by_key_or_bounded_window(
    mongo_uri: str, mongo_db: Any, kafka_bootstrap: str, topic_prefix: str, make_envelope: Any
) -> None:
    recorder = CommandRecorder()
    client: Any = AsyncMongoClient(mongo_uri, event_listeners=[recorder], tz_aware=True)
    try:
        db = client[mongo_db.name]
        producer = f"bounded{uuid.uuid4().hex[:6]}"
        topic = Topics(topic_prefix).events(producer)
        await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=2)
        store = MongoEventStore(db, producer)
        await store.ensure_indexes()
        for _ in range(30):
            stream = f"s-{uuid.uuid4().hex[:8]}"
            envelopes = [
                make_envelope(producer=producer, stream_id=stream, stream_version=v) for v in (1, 2)
            ]
            await store.append(stream, 0, envelopes)
        recorder.filters.clear()  # the store's own reads are part A's test

        relay = Relay(
            store,
            db,
            kafka_bootstrap,
            topic,
            change_stream=store.events,
            settings=RelaySettings(window=25, idle_wait_s=0.1, lease_ttl_s=2.0),
            registry=CollectorRegistry(),
        )
        await relay.start()
        try:
            assert await relay.acquire()
            while await relay.publish_next():
                pass
            assert relay.status.checkpoint == 60
            republished = await relay.republish(1, 60)
            assert republished.published == 60
        finally:
            await relay.close()

        handled: list[str] = []

        async def handler(event: Envelope, ctx: HandlerContext) -> None:
            handled.append(event.event_id)

        broker = KafkaBroker(kafka_bootstrap, logger=None)
        metrics = CollectorRegistry()
        consumer: EventConsumer[Envelope] = EventConsumer(broker, db, registry=metrics)
        for batch in (False, True):
            consumer.subscribe(
                topic,
                handler=handler,
                group_id=f"{producer}-{batch}",
                batch=batch,
                check_stream_versions=True,
                session_timeout_ms=2000,
                heartbeat_interval_ms=500,
            )
        await broker.start()
        try:
            # 60 events, each twice on the topic, two consumers: 120 applied, the rest skipped.
            await wait_until(lambda: len(handled) >= 120, what="both consumers applied all")

            def total(name: str) -> float:
                return sum(
                    metrics.get_sample_value(
                        f"mmgen_events_consumer_{name}_total",
                        {"consumer": f"{producer}-{batch}", "topic": topic},
                    )
                    or 0.0
                    for batch in (False, True)
                )

            # Every second copy is recognised as a duplicate, in either mode. Both counts are
            # awaited together: a batch that holds both copies counts its duplicate before the
            # transaction that applies the first copy commits (and only then counts it processed).
            await wait_until(
                lambda: (total("processed"), total("duplicates")) == (120, 120),
                what="processed and duplicates counted",
            )
            assert len(handled) == 120
        finally:
            await broker.stop()
    finally:
        await client.close()
    assert recorder.filters, "the listener saw nothing"
    seen = {name for name, _ in recorder.filters}
    assert {"find", "findAndModify", "update"} <= seen  # relay reads, lease, checkpoint
    assert any("$gte" in (f.get("producer_seq") or {}) for _, f in recorder.filters)  # relay
    assert any(isinstance(f.get("_id"), dict) and "$in" in f["_id"] for _, f in recorder.filters)
    unbounded = [(name, flt) for name, flt in recorder.filters if not bounded(flt)]
    assert unbounded == []

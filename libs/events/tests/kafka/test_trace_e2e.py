"""One trace from an append made inside a request, through the relay's publish, to the
consumer's handling (OpenTelemetry SDK with an in-memory exporter; real broker and database)."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from mmgen.events.consumer import EventConsumer, HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.events.tracing import current_traceparent, tracer


async def test_one_trace_spans_request_relay_and_consumer(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    make_envelope: Any,
    spans: InMemorySpanExporter,
) -> None:
    producer = f"traced{uuid.uuid4().hex[:6]}"
    topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=2)
    store = MongoEventStore(mongo_db, producer)
    await store.ensure_indexes()

    # The "HTTP request": a server span around the append, as the platform kit would open.
    with tracer().start_as_current_span("POST /things", kind=SpanKind.SERVER) as request:
        event = make_envelope(producer=producer, traceparent=current_traceparent())
        await store.append(event.stream_id, 0, [event])
    trace_id = request.get_span_context().trace_id

    relay = Relay(
        store,
        mongo_db,
        kafka_bootstrap,
        topic,
        settings=RelaySettings(lease_ttl_s=2.0),
        registry=CollectorRegistry(),
    )
    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 1
    finally:
        await relay.close()

    handled: list[str] = []

    async def handler(envelope: Envelope, ctx: HandlerContext) -> None:
        handled.append(envelope.event_id)

    broker = KafkaBroker(kafka_bootstrap, logger=None)
    consumer: EventConsumer[Envelope] = EventConsumer(
        broker, mongo_db, registry=CollectorRegistry()
    )
    consumer.subscribe(
        topic,
        handler=handler,
        group_id=f"tracer-{uuid.uuid4().hex[:6]}",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await broker.start()
    try:
        await wait_until(lambda: handled == [event.event_id], what="event handled")
    finally:
        await broker.stop()

    finished = spans.get_finished_spans()
    publish = [s for s in finished if s.name == f"{topic} publish"]
    process = [s for s in finished if s.name == f"{topic} process"]
    assert len(publish) == 1
    assert len(process) == 1
    assert publish[0].context.trace_id == trace_id
    assert process[0].context.trace_id == trace_id
    assert publish[0].parent is not None
    assert publish[0].parent.span_id == request.get_span_context().span_id
    assert process[0].parent is not None
    assert process[0].parent.span_id == publish[0].context.span_id
    assert publish[0].kind == SpanKind.PRODUCER
    assert process[0].kind == SpanKind.CONSUMER

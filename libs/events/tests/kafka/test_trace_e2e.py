"""One trace from an HTTP request that appends an event, through the relay's publish, to the
consumer's handling — with nobody passing `traceparent` by hand.

The app is built like every service's (`mmgen.platform.create_app`: FastAPI server spans from
the platform's telemetry); its route appends through the kernel's repository, whose append span
(a child of the request's) is stamped on the envelope. OpenTelemetry SDK with an in-memory
exporter; real broker and database.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import APIRouter
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from mmgen.events.consumer import EventConsumer, HandlerContext
from mmgen.events.envelope import Envelope
from mmgen.events.kafka_testing import wait_until
from mmgen.events.kernel import open_mongo_kernel
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData, EventRegistry
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.platform import ServiceSettings, create_app

PRODUCER = "traced"
registry = EventRegistry()


@registry.event("traced.ThingDone", action="update", resource_type="thing", categories=["project"])
class ThingDone(EventData):
    count: int


async def test_one_trace_spans_request_relay_and_consumer(
    kafka_bootstrap: str,
    mongo_db: Any,
    topic_prefix: str,
    spans: InMemorySpanExporter,
) -> None:
    topic = Topics(topic_prefix).events(PRODUCER)
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=2)
    kernel = await open_mongo_kernel(
        mongo_db,
        producer=PRODUCER,
        registry=registry,
        keyring=MasterKeyring(MasterKey.generate()),
    )

    router = APIRouter()

    @router.post("/things/{thing_id}", name="do_thing", status_code=201)
    async def do_thing(thing_id: str) -> dict[str, str]:
        stored = await kernel.repository.append(
            f"thing-{thing_id}", 0, [NewEvent(ThingDone(count=1))]
        )
        return {"event_id": stored[0].event_id}

    app = create_app(
        ServiceSettings(environment="test", service_name=PRODUCER, jwks_url=None),
        title="traced",
        version="0.0.1",
        routers=[router],
        metrics_registry=CollectorRegistry(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(f"/things/{uuid.uuid4().hex[:8]}")
    assert response.status_code == 201, response.text
    event_id = response.json()["event_id"]

    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans.get_finished_spans()]
    request = servers[0].context
    (append,) = [s for s in spans.get_finished_spans() if s.name == "events append"]
    assert append.parent is not None
    assert append.parent.span_id == request.span_id
    stored = await kernel.store.get(event_id)
    assert stored is not None
    assert stored.traceparent is not None
    _, trace_id, parent_id, _ = stored.traceparent.split("-")
    assert (trace_id, parent_id) == (f"{request.trace_id:032x}", f"{append.context.span_id:016x}")

    relay = Relay(
        kernel.store,
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
        await wait_until(lambda: handled == [event_id], what="event handled")
    finally:
        await broker.stop()
        await kernel.close()

    finished = spans.get_finished_spans()
    publish = [s for s in finished if s.name == f"{topic} publish"]
    process = [s for s in finished if s.name == f"{topic} process"]
    assert len(publish) == 1
    assert len(process) == 1
    assert publish[0].context.trace_id == request.trace_id
    assert process[0].context.trace_id == request.trace_id
    assert publish[0].parent is not None
    assert publish[0].parent.span_id == append.context.span_id
    assert process[0].parent is not None
    assert process[0].parent.span_id == publish[0].context.span_id
    assert publish[0].kind == SpanKind.PRODUCER
    assert process[0].kind == SpanKind.CONSUMER

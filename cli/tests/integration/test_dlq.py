"""`mmgen dlq`: a message parked for failing validation is listed, and replayed after a fix."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from mmgen.cli.dlq import list_dead_letters, replay
from mmgen.cli.main import app
from mmgen.events.consumer import EventConsumer, HandlerContext, RetryPolicy
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.events.errors import EventDataInvalidError
from mmgen.events.kafka_testing import wait_until
from mmgen.events.topics import Topics, dlq_topic, ensure_topics
from mmgen.runtime.testing import publish


def envelope(**data: Any) -> Envelope:
    return Envelope(
        event_type="svc.ThingHappened",
        schema_version=1,
        producer="svc",
        producer_seq=1,
        stream_id=f"s-{uuid.uuid4()}",
        stream_version=1,
        actor=Actor(id="x", role="client"),
        action="create",
        resource=Resource(type="thing", id="t"),
        data=data,
    )


async def test_a_parked_message_is_listed_then_processed_after_replay(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str
) -> None:
    topic = Topics(topic_prefix).events("svc")
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
    fixed = {"yes": False}
    handled: list[str] = []

    async def handler(event: Envelope, ctx: HandlerContext) -> None:
        if event.data.get("needs_fix") and not fixed["yes"]:
            raise EventDataInvalidError("no upcaster for this shape yet")
        handled.append(event.event_id)

    broker = KafkaBroker(kafka_bootstrap, logger=None)
    consumer: EventConsumer[Envelope] = EventConsumer(
        broker,
        mongo_db,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.01),
        registry=CollectorRegistry(),
    )
    consumer.subscribe(
        topic,
        handler=handler,
        group_id=f"g{uuid.uuid4().hex[:6]}",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await broker.start()
    try:
        broken, fine = envelope(needs_fix=True), envelope()
        await publish(kafka_bootstrap, topic, broken, fine)
        await wait_until(lambda: fine.event_id in handled, what="the good event handled")
        letters = []

        async def parked() -> bool:
            letters[:] = await list_dead_letters(kafka_bootstrap, [dlq_topic(topic)])
            return bool(letters)

        await wait_until(parked, what="the broken event parked")
        [letter] = letters
        assert letter.event_id == broken.event_id
        assert letter.original_topic == topic
        assert letter.error_type and letter.error_type.endswith("EventDataInvalidError")
        assert letter.attempts == "1"

        fixed["yes"] = True  # the fix is deployed
        [done] = await replay(kafka_bootstrap, dlq_topic(topic))
        assert done.event_id == broken.event_id
        await wait_until(lambda: broken.event_id in handled, what="the replayed event handled")
        assert await replay(kafka_bootstrap, dlq_topic(topic)) == []  # not sent twice
    finally:
        await broker.stop()
    assert handled.count(broken.event_id) == 1


def test_replay_refuses_a_topic_that_is_not_a_dead_letter_topic() -> None:
    result = CliRunner().invoke(app, ["dlq", "replay", "identity.events"])
    assert result.exit_code != 0
    assert "not a dead-letter topic" in result.output

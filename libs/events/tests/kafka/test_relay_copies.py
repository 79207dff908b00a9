"""Relay copies against the real local broker: events of given types also go to a second topic.

Retention's commands are events of its own store: they must reach `retention.events` (audited,
`producer_seq` unbroken) and `retention.commands` (obeyed by every service). Both sends belong
to one round: the checkpoint moves only once both were acked, and a republish sends both again.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.kafka_testing import read_all
from mmgen.events.relay import RELAY_COLLECTION, Relay, RelayError, RelaySettings, TopicCopy
from mmgen.events.store import InMemoryEventStore
from mmgen.events.topics import Topics, ensure_topics

FAST = RelaySettings(window=50, idle_wait_s=0.2, hole_retry_s=0.05, lease_ttl_s=2.0)


def _event(producer: str, name: str, subject: str) -> Envelope:
    stream = f"s-{uuid.uuid4().hex[:12]}"
    return Envelope(
        event_type=f"{producer}.{name}",
        schema_version=1,
        producer=producer,
        stream_id=stream,
        stream_version=1,
        subject_id=subject,
        action="erase" if name == "EraseThing" else "create",
        resource=Resource(type="thing", id=stream),
    )


async def _append(store: InMemoryEventStore, names: list[str], subject: str) -> list[Envelope]:
    out: list[Envelope] = []
    for name in names:
        event = _event(store.producer, name, subject)
        out.extend(await store.append(event.stream_id, 0, [event]))
    return out


def _relay(store: Any, db: Any, bootstrap: str, topic: str, copy: TopicCopy) -> Relay:
    return Relay(
        store, db, bootstrap, topic, settings=FAST, registry=CollectorRegistry(), copies=[copy]
    )


@pytest.fixture
def producer() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


async def test_commands_go_to_both_topics_once_in_order_before_the_checkpoint_moves(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, producer: str
) -> None:
    events_topic = Topics(topic_prefix).events(producer)
    commands_topic = f"{topic_prefix}{producer}.commands"
    await ensure_topics(kafka_bootstrap, [events_topic, commands_topic], partitions=3)
    store = InMemoryEventStore(producer)
    subject = str(uuid.uuid4())  # one key: one partition, so order is observable
    names = ["Made", "EraseThing", "Made", "EraseThing", "EraseThing", "Made"]
    stored = await _append(store, names, subject)
    copy = TopicCopy(commands_topic, frozenset({f"{producer}.EraseThing"}))

    relay = _relay(store, mongo_db, kafka_bootstrap, events_topic, copy)
    await relay.start()
    try:
        assert await relay.acquire()
        assert await relay.publish_next() == 6
    finally:
        await relay.close()
    state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer})
    assert state["checkpoint"] == 6

    # One more than expected, briefly: a duplicate would show up (everything was acked).
    on_events = await read_all(kafka_bootstrap, events_topic, expect=7, timeout_s=2)
    assert [json.loads(r.value)["producer_seq"] for r in on_events] == [1, 2, 3, 4, 5, 6]
    commands = [e for e in stored if e.event_type.endswith("EraseThing")]
    on_commands = await read_all(
        kafka_bootstrap, commands_topic, expect=len(commands) + 1, timeout_s=2
    )
    assert [Envelope.from_wire(r.value) for r in on_commands] == commands
    assert [r.key for r in on_commands] == [subject.encode()] * len(commands)
    command_type = f"{producer}.EraseThing".encode()
    assert {dict(r.headers)["event_type"] for r in on_commands} == {command_type}


async def test_republish_sends_the_copies_again(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, producer: str
) -> None:
    events_topic = Topics(topic_prefix).events(producer)
    commands_topic = f"{topic_prefix}{producer}.commands"
    await ensure_topics(kafka_bootstrap, [events_topic, commands_topic], partitions=1)
    store = InMemoryEventStore(producer)
    stored = await _append(store, ["Made", "EraseThing", "Made"], str(uuid.uuid4()))
    copy = TopicCopy(commands_topic, frozenset({f"{producer}.EraseThing"}))
    relay = _relay(store, mongo_db, kafka_bootstrap, events_topic, copy)

    result = await relay.republish(2, 3)

    assert (result.published, result.missing) == (2, [])
    on_events = await read_all(kafka_bootstrap, events_topic, expect=2)
    assert [json.loads(r.value)["producer_seq"] for r in on_events] == [2, 3]
    on_commands = await read_all(kafka_bootstrap, commands_topic, expect=1)
    assert [Envelope.from_wire(r.value) for r in on_commands] == [stored[1]]


async def test_a_failed_copy_keeps_the_checkpoint(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, producer: str
) -> None:
    """The copy's topic cannot take the message (a name over the broker's limit): the round
    fails as a whole and the checkpoint stays where it was, so the command is sent again by
    the next round rather than lost."""
    events_topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [events_topic], partitions=1)
    store = InMemoryEventStore(producer)
    await _append(store, ["Made", "EraseThing"], str(uuid.uuid4()))
    copy = TopicCopy("x" * 300, frozenset({f"{producer}.EraseThing"}))  # an illegal topic name
    relay = _relay(store, mongo_db, kafka_bootstrap, events_topic, copy)
    await relay.start()
    try:
        assert await relay.acquire()
        with pytest.raises(KafkaError):
            await relay.publish_next()
    finally:
        await relay.close()
    state = await mongo_db[RELAY_COLLECTION].find_one({"_id": producer})
    assert state["checkpoint"] == 0


def test_a_copy_names_a_topic_and_types() -> None:
    with pytest.raises(RelayError):
        TopicCopy("", frozenset({"a.B"}))
    with pytest.raises(RelayError):
        TopicCopy("t", frozenset())

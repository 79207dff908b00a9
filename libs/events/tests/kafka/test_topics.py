"""Topic names and their explicit creation with a fixed partition count (real local broker)."""

from __future__ import annotations

import re

import pytest
from aiokafka import AIOKafkaProducer

from mmgen.events.topics import (
    TopicPartitionMismatchError,
    Topics,
    dlq_topic,
    ensure_topics,
    service_topics,
)


def test_names_carry_the_prefix() -> None:
    topics = Topics("t9.")
    assert topics.events("identity") == "t9.identity.events"
    assert dlq_topic(topics.events("identity")) == "t9.identity.events.dlq"
    assert topics.retention_commands == "t9.retention.commands"
    assert topics.audit_log == "t9.audit.log"
    assert Topics().events("consent") == "consent.events"
    assert service_topics("projects", "p.") == ["p.projects.events", "p.projects.events.dlq"]


def test_events_pattern_matches_only_event_topics_of_its_prefix() -> None:
    pattern = re.compile(Topics("t9.").events_pattern())
    assert pattern.match("t9.identity.events")
    assert pattern.match("t9.consent.events")
    assert not pattern.match("t9.identity.events.dlq")
    assert not pattern.match("t9.audit.log")
    assert not pattern.match("t8.identity.events")
    assert not pattern.match("t9x.identity.events")
    assert not pattern.match("identity.events")


def test_an_events_topic_names_its_one_producer() -> None:
    topics = Topics("t9.")
    assert topics.events_producer("t9.identity.events") == "identity"
    assert topics.events_producer(topics.events("consent")) == "consent"
    assert topics.events_producer("t9.identity.events.dlq") is None
    assert topics.events_producer("t8.identity.events") is None
    assert topics.events_producer("t9.retention.commands") is None


async def test_ensure_topics_creates_with_fixed_count_and_is_idempotent(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    names = [*service_topics("svc", topic_prefix), Topics(topic_prefix).audit_log]
    first = await ensure_topics(kafka_bootstrap, names, partitions=3)
    assert first == dict.fromkeys(names, 3)
    again = await ensure_topics(kafka_bootstrap, names, partitions=3)  # error 36 is success
    assert again == first


async def test_topic_auto_created_with_another_count_is_reported(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    name = f"{topic_prefix}auto.events"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(name, b"x")  # auto-creates with the broker's default
    finally:
        await producer.stop()
    counts = await ensure_topics(kafka_bootstrap, [name], partitions=7, check_partitions=False)
    assert counts[name] != 7
    with pytest.raises(TopicPartitionMismatchError):
        await ensure_topics(kafka_bootstrap, [name], partitions=7)

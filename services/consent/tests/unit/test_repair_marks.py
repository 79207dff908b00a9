"""Gap repair waits until the projector has read what the broker held when a hole came due.

The marks are the broker's end offsets at that moment. A fake consumer stands in for the
broker here, so that the broker can come back empty between two checks — the real broker's
restart is the system test `tests/test_audit_broker_restart.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import TopicPartition

from mmgen.consent.audit import projector as projector_module
from mmgen.consent.audit.projector import AuditProjector

TOPIC = TopicPartition("mmgen.identity.events", 0)


class FakeConsumer:
    """A consumer assigned one partition, at `position`, on a broker holding `end` records."""

    def __init__(self, end: int, position: int) -> None:
        self.end = end
        self.at = position

    def assignment(self) -> set[TopicPartition]:
        return {TOPIC}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.end)

    async def position(self, tp: TopicPartition) -> int:
        return self.at

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {TOPIC.partition} if topic == TOPIC.topic else None

    #: The events topics the broker has, and those the pattern subscription holds.
    present = frozenset({TOPIC.topic})
    subscribed = frozenset({TOPIC.topic})
    subscribed_again = 0

    async def topics(self) -> set[str]:
        return set(self.present)

    def subscription(self) -> set[str]:
        return set(self.subscribed)

    def subscribe(self, *, pattern: str) -> None:
        self.subscribed_again += 1


def projector_reading(consumer: FakeConsumer) -> AuditProjector:
    projector = AuditProjector(
        cast(Any, None),
        "unused:9092",
        pattern=r"mmgen\.[^.]+\.events$",
        group_id="unused",
        producer=cast(Any, None),
        republish_topic="unused",
        metrics=cast(Any, None),
        producer_of=lambda topic: topic.split(".")[1] if topic.endswith(".events") else None,
    )
    projector._consumer = cast(Any, consumer)
    return projector


async def test_a_hole_waits_until_what_the_broker_held_is_read() -> None:
    consumer = FakeConsumer(end=500, position=480)
    projector = projector_reading(consumer)
    assert not await projector._read_what_the_broker_held("identity")
    consumer.end = 520  # more arrives meanwhile: the mark stays where the hole came due
    consumer.at = 500
    assert await projector._read_what_the_broker_held("identity")


async def test_a_broker_back_empty_lowers_the_mark_to_what_it_holds_now() -> None:
    consumer = FakeConsumer(end=500, position=480)
    projector = projector_reading(consumer)
    assert not await projector._read_what_the_broker_held("identity")
    # The broker restarts empty and takes 3 records; the consumer, reset, has read them.
    consumer.end, consumer.at = 3, 3
    assert await projector._read_what_the_broker_held("identity")


async def test_after_an_empty_restart_the_records_it_took_are_still_waited_for() -> None:
    consumer = FakeConsumer(end=500, position=480)
    projector = projector_reading(consumer)
    assert not await projector._read_what_the_broker_held("identity")
    consumer.end, consumer.at = 3, 1
    assert not await projector._read_what_the_broker_held("identity")
    consumer.end, consumer.at = 9, 3  # the mark stays at 3, not at the new end
    assert await projector._read_what_the_broker_held("identity")


class SilentBroker(FakeConsumer):
    """A broker that does not answer for end offsets: a partition gone after a restart."""

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_broker_that_does_not_answer_does_not_hold_repair_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(projector_module, "POSITIONS_TIMEOUT_S", 0.05)
    projector = projector_reading(SilentBroker(end=500, position=0))
    async with asyncio.timeout(5):  # not the client's 40 s request timeout
        assert await projector._read_what_the_broker_held("identity")


class ShrunkTopic(FakeConsumer):
    """Still assigned a partition the broker's metadata no longer lists (the topic came back
    with fewer partitions); asking its offsets would narrow the client's metadata to it."""

    asked = False

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set()

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked = True
        return await super().end_offsets(tps)


async def test_offsets_are_not_asked_of_a_partition_the_metadata_lacks() -> None:
    consumer = ShrunkTopic(end=500, position=0)
    projector = projector_reading(consumer)
    assert await projector._read_what_the_broker_held("identity")  # cannot tell: ask
    assert not consumer.asked


async def test_a_subscription_that_lost_the_producers_topic_subscribes_to_the_pattern_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = FakeConsumer(end=500, position=500)
    consumer.present = frozenset({TOPIC.topic, "mmgen.consent.events", "mmgen.audit.log"})
    consumer.subscribed = frozenset({TOPIC.topic})
    projector = projector_reading(consumer)
    assert await projector._read_what_the_broker_held("consent")  # its topic is not read
    assert consumer.subscribed_again == 1
    assert await projector._read_what_the_broker_held("consent")
    assert consumer.subscribed_again == 1  # not again within RESUBSCRIBE_EVERY_S
    monkeypatch.setattr(projector_module, "RESUBSCRIBE_EVERY_S", 0.0)
    assert await projector._read_what_the_broker_held("identity")  # its topic is read
    assert consumer.subscribed_again == 1
    assert await projector._read_what_the_broker_held("consent")
    assert consumer.subscribed_again == 2

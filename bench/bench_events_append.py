"""Benchmark of `MongoEventStore.append` beside the bare database operations, in one run.

Starts its own SecantusDB on a free port with the local stack's settings — on-disk storage
and `--sync-on-commit`, through the same launcher as `mmgen up` (INFRA.md: without it the
last second of acknowledged writes can be lost) — and measures:
- bare, one transaction per event: counter `$inc` + `insert_one` in `with_transaction`,
  20 concurrent tasks (what a naive event store does);
- bare, `insert_many` in batches of 500 without a transaction (the write ceiling);
- store, single-event appends from 20 concurrent writers over 50 streams (group commit),
  and the same with 5, 50 and 100 writers (how the group size follows the appends in flight);
- store, appends of 100-event batches: one writer, and 4 concurrent writers;
- costs, one transaction at a time: what a group-commit transaction costs the database
  (CPU of its process, from /proc) — fixed per transaction and per document, by index set,
  and the alternatives the store does not use (a client `bulkWrite`, an `$or` of version
  lookups).
The bare collections carry the same unique indexes as the store's. Every store run records
the database's and the benchmark's CPU per append and the load average after it: the
database's CPU per append bounds the rate (one core serves the writes), and on a shared
host it follows the load. Results go to bench/results/events_append.json with the machine
(load average read before the first run) and the database settings.
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
from pathlib import Path
from typing import Any

from _machine import (
    cpu_model,
    host_cpu_shares,
    host_cpu_ticks,
    package_versions,
    process_cpu_seconds,
)
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.operations import InsertOne, UpdateOne

from mmgen.events.envelope import Envelope, Resource
from mmgen.events.errors import ConcurrencyError
from mmgen.events.mongo_store import MongoEventStore
from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PRODUCER = "bench"
RESULTS = Path(__file__).parent / "results" / "events_append.json"
# The store's indexes (MongoEventStore.ensure_indexes), for the bare collections.
STREAM_INDEX = [("stream_id", ASCENDING), ("stream_version", ASCENDING)]
SEQ_INDEX = [("producer_seq", ASCENDING)]


class CpuMeter:
    """CPU seconds of the database process (from /proc) and of this one, over a measurement,
    and how long the database's threads waited for a CPU while runnable (schedstat): on a
    shared host that wait, not this code, is often what separates two runs."""

    def __init__(self, db_pid: int | None) -> None:
        self.db_pid = db_pid

    def db_runqueue_wait_seconds(self) -> float | None:
        if self.db_pid is None:
            return None
        total = 0
        try:
            tasks = list(Path(f"/proc/{self.db_pid}/task").iterdir())
        except OSError:
            return None
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended meanwhile
        return total / 1e9

    def db_seconds(self) -> float | None:
        if self.db_pid is None:
            return None
        try:
            return process_cpu_seconds(self.db_pid)
        except OSError:
            return None

    def start(self) -> tuple[float | None, float, float | None]:
        return self.db_seconds(), time.process_time(), self.db_runqueue_wait_seconds()

    def per_op_ms(
        self, started: tuple[float | None, float, float | None], ops: int
    ) -> dict[str, Any]:
        db_then, own_then, wait_then = started
        db_now, wait_now = self.db_seconds(), self.db_runqueue_wait_seconds()

        def per_op(then: float | None, now: float | None) -> float | None:
            return None if then is None or now is None else round((now - then) / ops * 1000, 3)

        return {
            "db_cpu_ms": per_op(db_then, db_now),
            "db_runqueue_wait_ms": per_op(wait_then, wait_now),
            "bench_cpu_ms": round((time.process_time() - own_then) / ops * 1000, 3),
        }


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
    await coll.create_index(STREAM_INDEX, unique=True)
    await coll.create_index(SEQ_INDEX, unique=True)
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
    await coll.create_index(STREAM_INDEX, unique=True)
    await coll.create_index(SEQ_INDEX, unique=True)
    docs = [
        {**make_event(f"im-{n}", 1).to_document(), "producer_seq": n + 1} for n in range(events)
    ]
    started = time.perf_counter()
    for i in range(0, events, batch):
        await coll.insert_many(docs[i : i + batch], ordered=False)
    elapsed = time.perf_counter() - started
    return {"events": events, "batch": batch, "per_s": round(events / elapsed)}


async def store_single_appends(
    db: Any, cpu: CpuMeter, events: int, writers: int, streams: int
) -> dict[str, Any]:
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

    meter = cpu.start()
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(writers)))
    elapsed = time.perf_counter() - started
    costs = cpu.per_op_ms(meter, len(latencies))
    appended = await store.last_seq()
    assert appended == (events // writers) * writers, appended
    db_ms = costs["db_cpu_ms"]
    return {
        "appends": appended,
        "writers": writers,
        "streams": streams,
        "per_s": round(appended / elapsed),
        "transactions": store.batches_committed,
        "avg_appends_per_transaction": round(len(latencies) / max(store.batches_committed, 1), 1),
        "conflicts_retried": conflicts,
        **percentiles(latencies),
        "db_cpu_ms_per_append": db_ms,
        "db_runqueue_wait_ms_per_append": costs["db_runqueue_wait_ms"],
        "bench_cpu_ms_per_append": costs["bench_cpu_ms"],
        # The rate if the database's one busy core did nothing else: the ceiling of any batching.
        "db_cpu_bound_per_s": round(1000 / db_ms) if db_ms else None,
        "db_busy_share": round(db_ms * appended / 1000 / elapsed, 2) if db_ms else None,
        "load_1m_after": round(os.getloadavg()[0], 2),
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


async def one_transaction(
    client: Any, coll: Any, counters: Any, docs: list[dict[str, Any]], how: str, last: list[int]
) -> None:
    """One group-commit transaction as the store runs it (`three_commands`: counter, insert,
    commit) or as a client `bulkWrite` holding a counter update conditioned on the last value
    this process saw (`last`, as a store could cache it) and the inserts, then commit."""
    n = len(docs)

    async def callback(session: Any) -> None:
        if how == "bulk_write":
            seq = last[0]
            models: list[Any] = [
                UpdateOne(
                    {"_id": PRODUCER, "seq": seq},
                    {"$inc": {"seq": n}},
                    upsert=seq == 0,
                    namespace=counters.full_name,
                )
            ]
            models += [
                InsertOne({**d, "producer_seq": seq + i + 1}, namespace=coll.full_name)
                for i, d in enumerate(docs)
            ]
            result = await client.bulk_write(models, session=session, ordered=True)
            assert result.matched_count + result.upserted_count == 1
            return
        counter = await counters.find_one_and_update(
            {"_id": PRODUCER},
            {"$inc": {"seq": n}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        first = int(counter["seq"]) - n + 1
        if docs:
            await coll.insert_many(
                [{**d, "producer_seq": first + i} for i, d in enumerate(docs)],
                ordered=True,
                session=session,
            )

    async with client.start_session() as session:
        await session.with_transaction(callback)
    last[0] += n


async def transaction_costs(
    client: Any, cpu: CpuMeter, indexes: list[list[Any]], size: int, how: str, repeat: int
) -> dict[str, Any]:
    """Database and benchmark CPU (and wall time) per transaction of `size` new events."""
    db = client[f"bench_cost_{uuid.uuid4().hex[:8]}"]
    coll, counters = db["events"], db["events_counters"]
    for keys in indexes:
        await coll.create_index(keys, unique=True)

    def docs() -> list[dict[str, Any]]:
        return [make_event(f"c-{uuid.uuid4().hex[:12]}", 1).to_document() for _ in range(size)]

    last = [0]
    for _ in range(5):  # warm up (collection creation, first counter upsert)
        await one_transaction(client, coll, counters, docs(), how, last)
    batches = [docs() for _ in range(repeat)]
    meter = cpu.start()
    started = time.perf_counter()
    for batch in batches:
        await one_transaction(client, coll, counters, batch, how, last)
    wall_ms = (time.perf_counter() - started) / repeat * 1000
    per_txn = cpu.per_op_ms(meter, repeat)
    await client.drop_database(db.name)
    return {
        "events_per_transaction": size,
        "wall_ms_per_transaction": round(wall_ms, 2),
        "db_cpu_ms_per_transaction": per_txn["db_cpu_ms"],
        "db_runqueue_wait_ms_per_transaction": per_txn["db_runqueue_wait_ms"],
        "bench_cpu_ms_per_transaction": per_txn["bench_cpu_ms"],
    }


async def version_lookups(db: Any, pairs: int) -> dict[str, Any]:
    """`pairs` (stream_id, stream_version) checks on the bare `insert_many` collection: one
    bounded lookup each, against one `$or` of them all."""
    coll = db["bare_insert_many"]
    docs = [d async for d in coll.find({"producer_seq": {"$gte": 1, "$lte": pairs}})]
    wanted = [(d["stream_id"], d["stream_version"]) for d in docs]
    started = time.perf_counter()
    for stream, version in wanted:
        found = [
            d
            async for d in coll.find(
                {"stream_id": stream, "stream_version": {"$gte": version, "$lte": version}},
                {"_id": 1},
            )
        ]
        assert len(found) == 1
    each_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    either = {"$or": [{"stream_id": s, "stream_version": v} for s, v in wanted]}
    found = [d async for d in coll.find(either, {"_id": 1})]
    assert len(found) == len(wanted)
    or_ms = (time.perf_counter() - started) * 1000
    return {
        "collection_documents": await coll.count_documents({}),
        "pairs": len(wanted),
        "one_lookup_each_total_ms": round(each_ms, 1),
        "one_or_query_ms": round(or_ms, 1),
    }


async def costs(client: Any, cpu: CpuMeter, repeat: int) -> dict[str, Any]:
    """What one transaction costs, measured one at a time (no concurrency)."""
    store_indexes = [STREAM_INDEX, SEQ_INDEX]
    fixed = await transaction_costs(client, cpu, store_indexes, 0, "three_commands", repeat)
    by_indexes = {
        name: await transaction_costs(client, cpu, indexes, 20, "three_commands", repeat)
        for name, indexes in (
            ("no_secondary_index", []),
            ("stream_version_unique", [STREAM_INDEX]),
            ("store_indexes", store_indexes),
        )
    }
    by_size = {
        size: await transaction_costs(client, cpu, store_indexes, size, "three_commands", repeat)
        for size in (1, 50)
    }
    bulk = await transaction_costs(client, cpu, store_indexes, 20, "bulk_write", repeat)
    out: dict[str, Any] = {
        "counter_and_commit_only": fixed,
        "transaction_of_20_by_indexes": by_indexes,
        "transaction_of_1_and_50_store_indexes": list(by_size.values()),
        "bulk_write_of_20_store_indexes": bulk,
    }
    c0 = fixed["db_cpu_ms_per_transaction"]
    c1, c50 = (by_size[n]["db_cpu_ms_per_transaction"] for n in (1, 50))
    if c0 is not None and c1 is not None and c50 is not None:
        per_doc = (c50 - c1) / 49  # the marginal document, with the store's indexes
        out["db_cpu_ms_derived"] = {
            "per_document_store_indexes": round(per_doc, 3),
            "per_transaction_fixed": round(c1 - per_doc, 3),
            # (transaction of 20 - counter and commit) / 20: the insert command included
            "per_document_with_insert_command_by_indexes": {
                name: round((r["db_cpu_ms_per_transaction"] - c0) / 20, 3)
                for name, r in by_indexes.items()
                if r["db_cpu_ms_per_transaction"] is not None
            },
        }
    return out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "packages": package_versions(("pymongo", "secantusdb", "pydantic", "cryptography")),
    }


async def run(args: argparse.Namespace, uri: str, cpu: CpuMeter) -> dict[str, Any]:
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
        results["version_lookups"] = await version_lookups(client["bench_bare_im"], 20)
        # The host is shared: repeat the headline measurement and keep every run.
        runs = [
            await store_single_appends(
                await fresh(f"bench_single_r{i}"), cpu, args.events, args.writers, 50
            )
            for i in range(args.repeat)
        ]
        results["store_single_appends_runs"] = runs
        results["store_single_appends"] = sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]
        # How group commit scales with more appends in flight (bigger groups per transaction).
        results["store_single_appends_by_writers"] = [
            await store_single_appends(
                await fresh(f"bench_single_{writers}"), cpu, args.events, writers, max(50, writers)
            )
            for writers in args.sweep
        ]
        results["store_batches_1_writer"] = await store_batch_appends(
            await fresh("bench_batch1"), args.batches, 100, 1
        )
        results["store_batches_4_writers"] = await store_batch_appends(
            await fresh("bench_batch4"), args.batches, 100, 4
        )
        results["costs"] = await costs(client, cpu, args.cost_repeat)
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
    parser.add_argument("--cost-repeat", type=int, default=100)
    args = parser.parse_args()
    host_machine = machine()  # before the runs: the load the host had when they started
    ticks_at_start = host_cpu_ticks()
    started = datetime.now(UTC)
    sync_on_commit = True  # what the local stack's database runs with (mmgen up)
    with tempfile.TemporaryDirectory(prefix="bench-events-append-") as tmp:
        database = start_database(
            HOST, free_port(), Path(tmp) / "db", Path(tmp) / "db.log", sync_on_commit=sync_on_commit
        )
        try:
            results = asyncio.run(run(args, database.extra["uri"], CpuMeter(database.pid)))
        finally:
            database.stop()
    single = results["store_single_appends"]
    bare = results["bare_txn_per_event"]["per_s"]
    report = {
        "benchmark": "events_append",
        "started_at": started.isoformat(),
        "database": {
            "server": f"SecantusDB {host_machine['packages']['secantusdb']}",
            "storage": "on disk (a temporary folder)",
            "sync_on_commit": sync_on_commit,
            "as_in": "the local stack (mmgen up): same launcher, start_database",
            "same_host_as_the_benchmark": True,
        },
        "machine": host_machine,
        "results": results,
        "summary": {
            "store_single_appends_per_s": single["per_s"],
            "store_single_appends_per_s_runs": [
                r["per_s"] for r in results["store_single_appends_runs"]
            ],
            "db_cpu_ms_per_append_runs": [
                r["db_cpu_ms_per_append"] for r in results["store_single_appends_runs"]
            ],
            "db_runqueue_wait_ms_per_append_runs": [
                r["db_runqueue_wait_ms_per_append"] for r in results["store_single_appends_runs"]
            ],
            "load_average_at_start": host_machine["load_average_at_start"],
            "load_average_at_end": os.getloadavg(),
            "host_cpu_shares_during_run": host_cpu_shares(ticks_at_start, host_cpu_ticks()),
            "bare_txn_per_event_per_s": bare,
            "speedup_over_txn_per_event": round(single["per_s"] / bare, 2) if bare else None,
            "target_single_appends_per_s": 2000,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

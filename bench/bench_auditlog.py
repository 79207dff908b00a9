"""Benchmark of mmgen.auditlog: offline verification rate and proof cost from node storage.

Measures, in one run and without any server:
- append: ChainBuilder + TreeAppender per entry (the consent service's CPU cost per entry);
- verify (dicts): `verify_log` over N synthetic entries as served by the API, with a signed
  checkpoint checked under a pinned key — the compliance officer's offline check;
- verify (JSON Lines): the same from an in-memory JSON Lines export (includes json.loads);
- proofs at 1,000,000 leaves: inclusion and consistency proofs and roots from a node store
  held in per-level byte arrays, counting node reads and batches per proof, and checking
  every proof against the root.
Results go to bench/results/auditlog.json with machine information.

Usage: uv run python bench/bench_auditlog.py [--entries N] [--leaves M] [--proofs K]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.verify import iter_jsonl, verify_log

RESULTS = Path(__file__).parent / "results" / "auditlog.json"
ORIGIN = "bench.mmgen.local/audit"
ACTIONS = ("read", "create", "update", "deny", "share", "consent")
PRODUCERS = ("identity", "projects", "profiles", "consent", "retention")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cryptography": metadata.version("cryptography"),
    }


def uuid7_like(i: int) -> uuid.UUID:
    """A UUIDv7-shaped id (Python 3.11's uuid module cannot make v7 itself)."""
    value = (0x0195F3A0 << 96) | i
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def synthetic_entries(n: int) -> tuple[list[dict[str, Any]], bytes, float]:
    """n realistic entries as JSON dicts, their Merkle root, and the append rate (entries/s)."""
    rng = random.Random(7)
    subjects = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(5000)]
    actors = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(500)]
    t0 = datetime(2026, 11, 25, tzinfo=UTC)
    builder, appender = ChainBuilder(), merkle.TreeAppender()
    producer_seq = dict.fromkeys(PRODUCERS, 0)
    out: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i in range(n):
        producer = PRODUCERS[i % len(PRODUCERS)]
        producer_seq[producer] += 1
        system = i % 17 == 0
        entry = builder.append(
            event_id=uuid7_like(i),
            producer=producer,
            producer_seq=producer_seq[producer],
            event_type=f"{producer}.ThingHappened",
            action=ACTIONS[i % len(ACTIONS)],
            subject_id=subjects[i % len(subjects)],
            actor_id=None if system else actors[i % len(actors)],
            actor_role=None if system else "staff",
            purpose=None if system else "project_execution",
            resource={"type": "project", "id": subjects[(i * 7) % len(subjects)]},
            categories=["communication", "project"] if i % 3 else ["contact"],
            occurred_at=t0 + timedelta(milliseconds=i),
            recorded_at=t0 + timedelta(milliseconds=i + 40),
        )
        appender.append(entry.leaf_hash)
        out.append(entry.to_json())
    rate = n / (time.perf_counter() - start)
    return out, appender.root(), rate


def bench_verify(entries: list[dict[str, Any]], root: bytes, repeats: int) -> dict[str, Any]:
    """Verify the log from dicts, then from a JSON Lines export with the dicts freed.

    The dicts are dropped before the export run so the garbage collector does not keep
    rescanning 200k live objects: a CLI reading an export holds only the current line.
    """
    signer = NoteSigner.generate(ORIGIN)
    vkey = signer.verifier().to_string()
    n = len(entries)
    note = sign_checkpoint(Checkpoint(ORIGIN, n, root), signer)
    export = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    dict_times, jsonl_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = verify_log(entries, checkpoint_note=note, verifier_key=vkey)
        dict_times.append(time.perf_counter() - start)
        if not result.valid or result.checked != n:
            raise SystemExit(f"verification failed unexpectedly: {result.to_json()}")
    entries.clear()
    gc.collect()
    for _ in range(repeats):
        start = time.perf_counter()
        result = verify_log(
            iter_jsonl(io.StringIO(export)), checkpoint_note=note, verifier_key=vkey
        )
        jsonl_times.append(time.perf_counter() - start)
        if not result.valid or result.checked != n:
            raise SystemExit(f"JSONL verification failed unexpectedly: {result.to_json()}")
    return {
        "entries": n,
        "repeats": repeats,
        "dicts_entries_per_s_best": round(n / min(dict_times)),
        "dicts_entries_per_s_median": round(n / statistics.median(dict_times)),
        "jsonl_entries_per_s_best": round(n / min(jsonl_times)),
        "jsonl_entries_per_s_median": round(n / statistics.median(jsonl_times)),
        "jsonl_export_bytes": len(export.encode()),
        "target_entries_per_s": 50_000,
        "meets_target_dicts": n / statistics.median(dict_times) >= 50_000,
        "meets_target_jsonl": n / statistics.median(jsonl_times) >= 50_000,
    }


class LevelArrayStore:
    """NodeReader over one bytearray per level (32 bytes per node), counting reads."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = []
        self.reads = 0
        self.batches = 0

    def put(self, nodes: Sequence[merkle.StoredNode]) -> None:
        for node in nodes:
            while len(self.levels) <= node.level:
                self.levels.append(bytearray())
            level = self.levels[node.level]
            if len(level) != node.index * 32:
                raise RuntimeError("nodes must arrive in append order")
            level += node.hash

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return bytes(self.levels[level][index * 32 : index * 32 + 32])

    def get_many(self, ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        self.batches += 1
        self.reads += len(ids)
        return {(lv, i): bytes(self.levels[lv][i * 32 : i * 32 + 32]) for lv, i in ids}


def bench_proofs(leaves: int, proofs: int) -> dict[str, Any]:
    store = LevelArrayStore()
    appender = merkle.TreeAppender()
    start = time.perf_counter()
    for i in range(leaves):
        store.put(appender.append(hashlib.sha256(i.to_bytes(8, "big")).digest()))
    build_s = time.perf_counter() - start
    root = appender.root()
    stored = sum(len(level) // 32 for level in store.levels)

    rng = random.Random(11)
    store.reads = store.batches = 0
    if merkle.root_from_store(store, leaves) != root:
        raise SystemExit("root from storage differs from the appender's root")
    root_reads = store.reads

    incl_reads: list[int] = []
    incl_batches: list[int] = []
    incl_times: list[float] = []
    for _ in range(proofs):
        index = rng.randrange(leaves)
        leaf = bytes(store.levels[0][index * 32 : index * 32 + 32])
        before, batches = store.reads, store.batches
        t = time.perf_counter()
        proof = merkle.inclusion_proof_from_store(store, index, leaves)
        incl_times.append(time.perf_counter() - t)
        incl_reads.append(store.reads - before)
        incl_batches.append(store.batches - batches)
        merkle.verify_inclusion(leaf, index, leaves, proof, root)

    cons_reads: list[int] = []
    cons_times: list[float] = []
    for _ in range(proofs):
        old = rng.randrange(1, leaves)
        old_root = merkle.root_from_store(store, old)
        before = store.reads
        t = time.perf_counter()
        proof = merkle.consistency_proof_from_store(store, old, leaves)
        cons_times.append(time.perf_counter() - t)
        cons_reads.append(store.reads - before)
        merkle.verify_consistency(old, leaves, proof, old_root, root)
    # worst case for inclusion: the last leaf of a size just below a power of two
    worst = merkle.plan_inclusion((1 << 20) - 2, (1 << 20) - 1)
    return {
        "leaves": leaves,
        "stored_nodes": stored,
        "stored_nodes_per_leaf": round(stored / leaves, 3),
        "build_leaves_per_s": round(leaves / build_s),
        "root_reads": root_reads,
        "proofs_sampled": proofs,
        "inclusion_reads_mean": round(statistics.mean(incl_reads), 2),
        "inclusion_reads_max": max(incl_reads),
        "inclusion_batches_per_proof_max": max(incl_batches),
        "inclusion_us_median": round(statistics.median(incl_times) * 1e6, 1),
        "consistency_reads_mean": round(statistics.mean(cons_reads), 2),
        "consistency_reads_max": max(cons_reads),
        "consistency_us_median": round(statistics.median(cons_times) * 1e6, 1),
        "ceil_log2_leaves": (leaves - 1).bit_length(),
        "worst_case_inclusion_nodes_2^20-1": len(worst.nodes),
        "all_proofs_verified": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    entries, root, append_rate = synthetic_entries(args.entries)
    verify = bench_verify(entries, root, args.repeats)  # empties the list
    proofs = bench_proofs(args.leaves, args.proofs)
    result = {
        "benchmark": "auditlog",
        "machine": machine(),
        "results": {
            "append_entries_per_s": round(append_rate),
            "verify": verify,
            "proofs": proofs,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    RESULTS.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Benchmark of offline verification at 1,000,000 entries: the officer's command beside the
library's raw rate, in the same run, on the same export.

Builds (without any server) a JSON Lines export of N entries exactly as the consent service
stores and serves them (canonical text, `hash` included; `plan_append`, the projector's own
planning), a head signed by the log and cosigned by a witness, then measures:
- library, parsed entries: `verify_log(iter_jsonl(file))` — every line parsed, then checked;
- library, export lines: `verify_export(file)` — what the command runs (canonical lines are
  checked without parsing);
- the officer's command, as a process: `mmgen-verify verify --file … --checkpoint …
  --public-key @… --witness-key @… --quorum 1`, its progress bar drawn on a pseudo-terminal
  (as a person sees it), wall time from start to exit (interpreter start-up included) — with
  its default workers (the CPUs) and with `--workers 1` (no worker process).
Wall-clock rates are the measure; CPU-time rates are recorded beside them because the host is
shared (the load average before and after, and at the start of each round, is recorded too).
Results go to bench/results/audit_verify.json.

Usage: uv run python bench/bench_audit_verify.py [--entries N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, parse_note, sign_checkpoint
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.verify import iter_jsonl, verify_export, verify_log
from mmgen.consent.audit.store import Head, plan_append

RESULTS = Path(__file__).parent / "results" / "audit_verify.json"
ORIGIN = "bench.local/audit"
AIM = 50_000
CHUNK = 32 * 256
SUBJECTS = [str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(5_000)]
ACTORS = [str(uuid.UUID(int=i * 104729 + 3, version=4)) for i in range(300)]
PRODUCERS = ("identity", "projects", "profiles", "consent")
ACTIONS = ("read", "read", "update", "share", "deny", "consent")


def items(start: int, end: int, base: datetime) -> list[dict[str, Any]]:
    """Entry fields as the projector takes them from envelopes (ids and header only)."""
    out = []
    for n in range(start, end):
        system = n % 17 == 0
        out.append(
            {
                "event_id": str(uuid.UUID(int=(0x0195F3A0 << 96) | n, version=4)),
                "producer": PRODUCERS[n % 4],
                "producer_seq": n // 4 + 1,
                "event_type": f"{PRODUCERS[n % 4]}.RequirementsRead",
                "action": ACTIONS[n % len(ACTIONS)],
                "occurred_at": base + timedelta(milliseconds=n),
                "subject_id": SUBJECTS[n % len(SUBJECTS)],
                "actor_id": None if system else ACTORS[n % len(ACTORS)],
                "actor_role": None if system else "staff",
                "purpose": None if system else "project_execution",
                "resource": {"type": "project", "id": SUBJECTS[(n * 7) % len(SUBJECTS)]},
                "categories": ("communication", "project") if n % 3 else ("contact",),
            }
        )
    return out


def build_export(folder: Path, entries: int) -> dict[str, Any]:
    """The export, the log's key and the witness's, and the cosigned head covering it all."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    head, progress = Head.empty(), {}
    started = time.perf_counter()
    path = folder / "export.jsonl"
    with path.open("w") as out:
        start = 0
        while start < entries:
            plan = plan_append(items(start, min(entries, start + CHUNK), base), head, set(),
                               progress, base)  # fmt: skip
            for page in plan.pages:
                out.write("\n".join(page["e"]) + "\n")
            head, progress, start = plan.new_head, plan.progress, start + plan.appended
    log, witness = NoteSigner.generate(ORIGIN), CosignatureSigner.generate("bench.local/witness")
    note = sign_checkpoint(Checkpoint(ORIGIN, entries, head.root()), log)
    note += witness.cosign(parse_note(note).text, int(time.time())).line()
    (folder / "head.note").write_text(note)
    (folder / "log.pub").write_text(log.verifier().to_string() + "\n")
    (folder / "witness.pub").write_text(witness.verifier().to_string() + "\n")
    return {
        "path": path,
        "note": note,
        "key": log.verifier(),
        "build_s": round(time.perf_counter() - started, 1),
        "export_mb": round(path.stat().st_size / 1e6, 1),
    }


def timed(fn: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def library(export: dict[str, Any], entries: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, run in (
        ("parsed_entries", lambda f: verify_log(iter_jsonl(f), checkpoint_note=export["note"],
                                                verifier_key=export["key"])),
        ("export_lines", lambda f: verify_export(f, checkpoint_note=export["note"],
                                                 verifier_key=export["key"])),
    ):  # fmt: skip
        walls, cpus, loads = [], [], []
        for _ in range(repeats):
            loads.append(round(os.getloadavg()[0], 2))
            with export["path"].open("rb") as stream:
                wall, cpu, result = timed(lambda s=stream, r=run: r(s))
            if not result.valid or result.checked != entries:
                raise SystemExit(f"{name}: verification failed: {result.to_json()}")
            walls.append(wall)
            cpus.append(cpu)
        out[name] = {
            "seconds_median": round(statistics.median(walls), 2),
            "entries_per_s": round(entries / statistics.median(walls)),
            "entries_per_s_best": round(entries / min(walls)),
            "cpu_entries_per_s": round(entries / statistics.median(cpus)),
            "seconds_each": [round(w, 2) for w in walls],
            "load_average_1min_each": loads,
        }
    out["parsed_entries"]["path"] = "verify_log(iter_jsonl(file)): every line parsed, then checked"
    out["export_lines"]["path"] = "verify_export(file): what the command runs"
    return out


def command(
    folder: Path, export: dict[str, Any], entries: int, repeats: int, *extra: str
) -> dict[str, Any]:
    """`mmgen-verify verify --file …` as a process, its stderr a terminal (the progress bar)."""
    binary = Path(sys.executable).with_name("mmgen-verify")
    argv = [
        str(binary), "verify", "--file", str(export["path"]),
        "--checkpoint", str(folder / "head.note"), "--public-key", f"@{folder / 'log.pub'}",
        "--witness-key", f"@{folder / 'witness.pub'}", "--quorum", "1", *extra,
    ]  # fmt: skip
    walls, cpus, drawn, loads = [], [], [], []
    for _ in range(repeats):
        loads.append(round(os.getloadavg()[0], 2))
        master, slave = pty.openpty()
        chunks: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(master, chunks), daemon=True)
        reader.start()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=slave, text=True, check=False,
            env={**os.environ, "COLUMNS": "120"},
        )  # fmt: skip
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
        if done.returncode != 0 or "VALID" not in done.stdout:
            raise SystemExit(f"the command failed: {done.stdout}")
        drawn.append(sum(len(c) for c in chunks))
    return {
        "argv": " ".join(_short(a) for a in argv),
        "seconds_median": round(statistics.median(walls), 2),
        "entries_per_s": round(entries / statistics.median(walls)),
        "entries_per_s_best": round(entries / min(walls)),
        "cpu_entries_per_s": round(entries / statistics.median(cpus)),
        "seconds_each": [round(w, 2) for w in walls],
        "load_average_1min_each": loads,
        "progress_bytes_drawn_median": statistics.median(drawn),
        "progress": "rich progress bar on a pseudo-terminal, advanced a 16 MiB span at a time",
        "includes": "interpreter start-up, key and head checks (log + 1 witness), all entries",
    }


def _short(arg: str) -> str:
    """An argument with its temporary folder left out (`@/tmp/…/log.pub` → `@log.pub`)."""
    at = "@" if arg.startswith("@") else ""
    path = arg.removeprefix("@")
    return at + Path(path).name if path.startswith("/") else arg


def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        chunks.append(data)


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cryptography": metadata.version("cryptography"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-audit-verify-"))
    try:
        print(f"building an export of {args.entries} entries", flush=True)
        export = build_export(folder, args.entries)
        print(f"built in {export['build_s']} s ({export['export_mb']} MB); measuring", flush=True)
        raw = library(export, args.entries, args.repeats)
        officer = command(folder, export, args.entries, args.repeats)
        officer["workers"] = f"default: the CPUs ({os.cpu_count()})"
        one = command(folder, export, args.entries, args.repeats, "--workers", "1")
        result = {
            "benchmark": "audit_verify",
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "entries": args.entries,
            "export_mb": export["export_mb"],
            "repeats": args.repeats,
            "library": raw,
            "officer_command": officer,
            "officer_command_1_worker": one,
            "aim": {"entries_per_s_at_least": AIM},
            "meets_aim": officer["entries_per_s"] >= AIM,
            "machine": machine(load_before),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2)
        RESULTS.write_text(text + "\n")
        print(text)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

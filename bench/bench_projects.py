"""Benchmark of the projects service: the price of auditing a read, and file throughput.

Starts its own SecantusDB (on disk, `--sync-on-commit`, as `mmgen up` runs it) and broker on
free ports, a JWKS document for its tokens, and two projects services as processes under
uvicorn, on the same database — the real app (`build_app`) each, relay and inbox running:
- "audited": as deployed; every page read appends a `projects.DataAccessed` event (group
  commit) that the relay then publishes;
- "off": the same app whose access log records nothing (`NullAccessLog`, wired only by this
  benchmark, through `service_app()` below) — the same read without its access event.
Then, in the same run, alternately (the host is shared: rounds interleave the variants so load
drifts hit both alike):
- reads: `GET /projects/{id}/messages?limit=50` (a page of three authors' messages, decrypted)
  as the project's owner, one at a time (latency) and from C concurrent clients (throughput);
  the service process's CPU per read is read from /proc, so "reads/s per process" is also
  given for one full core (the client, the database and the broker share the host's 2 cores);
- files: a streamed multipart upload of S MiB and its streamed, decrypted download through
  HTTP, beside a raw GridFS write and read (`AsyncGridFSBucket`, same chunk size) of the same
  bytes on the same database.
Results go to bench/results/projects.json with the machine (load average read before the
runs), the package versions and the host's CPU shares during the run.

Usage: uv run python bench/bench_projects.py [--reads N] [--concurrency C] [--rounds R]
       [--messages M] [--file-mib S] [--file-rounds F]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _machine import cpu_model, host_cpu_shares, host_cpu_ticks, package_versions
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.localstack.components import start_broker, start_database
from mmgen.localstack.ports import free_port
from mmgen.localstack.processes import ManagedProcess, python_argv, spawn, wait_ready
from mmgen.platform.auth import SigningKey, issue_token
from mmgen.platform.auth.keys import jwks_document
from mmgen.runtime.testing import COMMAND_KEYS, publish

HOST = "127.0.0.1"
MIB = 1024 * 1024
RESULTS = Path(__file__).parent / "results" / "projects.json"
DATABASE = "bench_projects"
PREFIX = "bench."
CHUNK_BYTES = 256 * 1024
PAGE = 50
ACCESS_EVENTS_ENV = "BENCH_PROJECTS_ACCESS_EVENTS"


# --- the service, as uvicorn runs it in each process --------------------------------------------


def service_app() -> Any:
    """The projects app; with `BENCH_PROJECTS_ACCESS_EVENTS=off`, its reads record nothing."""
    from mmgen.projects.adapters.access_log import NullAccessLog
    from mmgen.projects.bootstrap import bootstrap
    from mmgen.projects.entrypoints.app import build_app
    from mmgen.projects.settings import ProjectsSettings

    settings = ProjectsSettings()
    off = os.environ.get(ACCESS_EVENTS_ENV) == "off"
    service = bootstrap(settings, access_log=NullAccessLog() if off else None)
    return build_app(settings, service=service)


def start_service(
    name: str, port: int, env: dict[str, str], access_events: bool, logs: Path
) -> ManagedProcess:
    argv = python_argv(
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(__file__).parent),
        "--factory",
        "bench_projects:service_app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    )
    proc = spawn(
        name,
        argv,
        HOST,
        port,
        logs / f"{name}.log",
        env={
            **env,
            "PROJECTS_PORT": str(port),
            ACCESS_EVENTS_ENV: "on" if access_events else "off",
        },
    )
    wait_ready(
        proc, lambda: httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200, 90
    )
    return proc


class Jwks:
    """Identity's JWKS, as the services fetch it, served from this process."""

    def __init__(self, key: SigningKey) -> None:
        body = json.dumps(jwks_document({key.kid: key.public_key})).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((HOST, free_port()), Handler)
        self.url = f"http://{HOST}:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# --- measuring ----------------------------------------------------------------------------------


def process_cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "packages": package_versions(
            ("pymongo", "secantusdb", "fastapi", "uvicorn", "httpx", "cryptography")
        ),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def read_phase(
    url: str, path: str, headers: dict[str, str], reads: int, concurrency: int, pid: int | None
) -> dict[str, Any]:
    """`reads` page reads from `concurrency` clients; latency, rate, service CPU per read."""
    latencies: list[float] = []
    remaining = reads
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        await http.get(path)  # warm the connection and the caches

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await http.get(path)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or len(response.json()["items"]) != PAGE:
                    raise RuntimeError(f"read failed: {response.status_code} {response.text}")

        cpu_before = process_cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_after = process_cpu_seconds(pid)
    service_cpu_ms = (
        None
        if cpu_before is None or cpu_after is None
        else round((cpu_after - cpu_before) / reads * 1000, 3)
    )
    return {
        "reads": reads,
        "concurrency": concurrency,
        "per_s": round(reads / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "service_cpu_ms_per_read": service_cpu_ms,
        "per_s_per_core_of_service": (round(1000 / service_cpu_ms, 1) if service_cpu_ms else None),
    }


async def pieces(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# --- the run ------------------------------------------------------------------------------------


def identity_registered(user_id: str, role: str) -> Envelope:
    """identity's `UserRegistered`, as projects learns its users from it."""
    return Envelope(
        event_type="identity.UserRegistered",
        schema_version=1,
        producer="identity",
        producer_seq=1,
        stream_id=f"user-{user_id}",
        stream_version=1,
        subject_id=user_id,
        actor=Actor(id=user_id, role=role),
        action="create",
        resource=Resource(type="user", id=user_id),
        data={"role": role},
    )


async def seed(
    url: str, key: SigningKey, kafka: str, messages: int
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A project of an owner with two creators and `messages` messages of the three."""
    owner, creators = str(uuid.uuid4()), [str(uuid.uuid4()), str(uuid.uuid4())]
    await publish(
        kafka, f"{PREFIX}identity.events", *(identity_registered(c, "creator") for c in creators)
    )

    def auth(subject: str, role: str) -> dict[str, str]:
        token = issue_token(
            key, subject=subject, role=role, ttl=timedelta(hours=2), amr=["pwd", "otp"]
        )
        return {"Authorization": f"Bearer {token}"}

    people = [auth(owner, "client"), *(auth(c, "creator") for c in creators)]
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        made = await http.post(
            "/projects", headers=people[0], json={"title": "Bench", "requirements": "Pages"}
        )
        project_id = made.json()["project_id"]
        for creator in creators:
            deadline = time.monotonic() + 60
            while True:
                added = await http.post(
                    f"/projects/{project_id}/members",
                    headers=people[0],
                    json={"user_id": creator, "role": "creator"},
                )
                if added.status_code == 201:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"creator never became known: {added.text}")
                await asyncio.sleep(0.2)
        for i in range(messages):
            posted = await http.post(
                f"/projects/{project_id}/messages",
                headers=people[i % 3],
                json={"text": f"Message {i}: call sheet, wardrobe and the north gate at 6:30."},
            )
            if posted.status_code != 201:
                raise RuntimeError(posted.text)
    return project_id, people[0], people[1]


async def file_round(
    url: str, project_id: str, headers: dict[str, str], data: bytes, db: Any
) -> dict[str, Any]:
    boundary = "bench-boundary-0f9e8d7c"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="take.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for piece in pieces(data):
            yield piece
        yield f"\r\n--{boundary}--\r\n".encode()

    mib = len(data) / MIB
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        started = time.perf_counter()
        uploaded = await http.post(
            f"/projects/{project_id}/files",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body(),
        )
        upload_s = time.perf_counter() - started
        if uploaded.status_code != 201:
            raise RuntimeError(uploaded.text)
        digest = hashlib.sha256()
        started = time.perf_counter()
        async with http.stream(
            "GET", f"/projects/{project_id}/files/{uploaded.json()['file_id']}"
        ) as download:
            async for piece in download.aiter_raw():
                digest.update(piece)
        download_s = time.perf_counter() - started
    if digest.digest() != hashlib.sha256(data).digest():
        raise RuntimeError("the download differs from the upload")

    bucket = AsyncGridFSBucket(db, bucket_name="bench_raw", chunk_size_bytes=CHUNK_BYTES)
    started = time.perf_counter()
    file_id = await bucket.upload_from_stream("take.pdf", data)
    raw_write_s = time.perf_counter() - started
    raw = hashlib.sha256()
    started = time.perf_counter()
    stream = await bucket.open_download_stream(file_id)
    while chunk := await stream.readchunk():
        raw.update(chunk)
    raw_read_s = time.perf_counter() - started
    await bucket.delete(file_id)
    return {
        "mib": round(mib, 2),
        "upload_mib_s": round(mib / upload_s, 1),
        "download_mib_s": round(mib / download_s, 1),
        "raw_gridfs_write_mib_s": round(mib / raw_write_s, 1),
        "raw_gridfs_read_mib_s": round(mib / raw_read_s, 1),
    }


async def run(args: argparse.Namespace, urls: dict[str, str], pids: dict[str, int | None],
              key: SigningKey, kafka: str, mongo_uri: str) -> dict[str, Any]:  # fmt: skip
    project_id, owner, _ = await seed(urls["audited"], key, kafka, args.messages)
    path = f"/projects/{project_id}/messages?limit={PAGE}"
    mongo: Any = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = mongo[DATABASE]
        accessed_before = await db["events"].count_documents(
            {"event_type": "projects.DataAccessed"}
        )
        rounds: list[dict[str, Any]] = []
        for number in range(args.rounds):
            one_round: dict[str, Any] = {"round": number + 1}
            for variant in ("audited", "off"):
                one_round[variant] = {
                    "sequential": await read_phase(
                        urls[variant], path, owner, args.sequential_reads, 1, pids[variant]
                    ),
                    "concurrent": await read_phase(
                        urls[variant], path, owner, args.reads, args.concurrency, pids[variant]
                    ),
                }
            rounds.append(one_round)
        audited_reads = args.rounds * (args.reads + args.sequential_reads + 2)
        accessed = (
            await db["events"].count_documents({"event_type": "projects.DataAccessed"})
            - accessed_before
        )
        data = b"%PDF-1.7\n" + os.urandom(args.file_mib * MIB - 9)
        files = [
            await file_round(urls["audited"], project_id, owner, data, db)
            for _ in range(args.file_rounds)
        ]
    finally:
        await mongo.close()
    return {
        "rounds": rounds,
        "access_events_appended": accessed,
        "audited_reads_made": audited_reads,
        "files": files,
    }


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    def median_of(variant: str, phase: str, field: str) -> float | None:
        values = [r[variant][phase][field] for r in results["rounds"]]
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 3) if values else None

    summary: dict[str, Any] = {}
    for phase in ("sequential", "concurrent"):
        audited_p50 = median_of("audited", phase, "p50_ms")
        off_p50 = median_of("off", phase, "p50_ms")
        audited_rate = median_of("audited", phase, "per_s")
        off_rate = median_of("off", phase, "per_s")
        summary[phase] = {
            "audited_p50_ms": audited_p50,
            "off_p50_ms": off_p50,
            "latency_ratio_p50": round(audited_p50 / off_p50, 2)
            if audited_p50 and off_p50
            else None,
            "audited_per_s": audited_rate,
            "off_per_s": off_rate,
            "audited_service_cpu_ms_per_read": median_of(
                "audited", phase, "service_cpu_ms_per_read"
            ),
            "off_service_cpu_ms_per_read": median_of("off", phase, "service_cpu_ms_per_read"),
            "audited_per_s_per_core_of_service": median_of(
                "audited", phase, "per_s_per_core_of_service"
            ),
        }
    files = results["files"]
    summary["files"] = {
        key: round(statistics.median(f[key] for f in files), 1)
        for key in (
            "upload_mib_s",
            "download_mib_s",
            "raw_gridfs_write_mib_s",
            "raw_gridfs_read_mib_s",
        )
    }
    summary["targets"] = {"latency_ratio_p50_at_most": 1.5, "audited_reads_per_s_at_least": 1000}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000, help="reads per concurrent phase")
    parser.add_argument("--sequential-reads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--file-mib", type=int, default=20)
    parser.add_argument("--file-rounds", type=int, default=3)
    args = parser.parse_args()
    host_machine = machine()
    ticks_at_start = host_cpu_ticks()
    started = datetime.now(UTC)
    key = SigningKey.generate()
    jwks = Jwks(key)
    procs: list[ManagedProcess] = []
    with tempfile.TemporaryDirectory(prefix="bench-projects-") as tmp:
        logs = Path(tmp) / "logs"
        try:
            database = start_database(
                HOST, free_port(), Path(tmp) / "db", logs / "db.log", sync_on_commit=True
            )
            procs.append(database)
            broker = start_broker(HOST, free_port(), logs / "broker.log")
            procs.append(broker)
            env = {
                "PROJECTS_ENVIRONMENT": "test",
                "PROJECTS_MONGO_URI": database.extra["uri"],
                "PROJECTS_MONGO_DATABASE": DATABASE,
                "PROJECTS_KAFKA_BOOTSTRAP": broker.address,
                "PROJECTS_TOPIC_PREFIX": PREFIX,
                "PROJECTS_JWKS_URL": jwks.url,
                # Real secrets: a service refuses to start with development ones under `test`.
                "PROJECTS_MASTER_KEY": base64.b64encode(os.urandom(32)).decode("ascii"),
                "PROJECTS_RETENTION_COMMAND_KEYS": json.dumps(list(COMMAND_KEYS)),
                "PROJECTS_LOG_LEVEL": "WARNING",
                "PROJECTS_MAX_FILE_BYTES": str((args.file_mib + 1) * MIB),
                "PROJECTS_CONSUMER_SESSION_TIMEOUT_MS": "2000",
                "PROJECTS_CONSUMER_HEARTBEAT_INTERVAL_MS": "500",
                "OTEL_SDK_DISABLED": "true",
            }
            audited = start_service("projects-audited", free_port(), env, True, logs)
            procs.append(audited)
            off = start_service("projects-off", free_port(), env, False, logs)
            procs.append(off)
            results = asyncio.run(
                run(
                    args,
                    {"audited": f"http://{audited.address}", "off": f"http://{off.address}"},
                    {"audited": audited.pid, "off": off.pid},
                    key,
                    broker.address,
                    database.extra["uri"],
                )
            )
        finally:
            for proc in reversed(procs):
                proc.stop()
            jwks.close()
    report = {
        "benchmark": "projects",
        "started_at": started.isoformat(),
        "setup": {
            "services": "two projects processes (uvicorn, one worker each) on one database: "
            "'audited' as deployed, 'off' with NullAccessLog; relay and inbox running",
            "read": f"GET /projects/{{id}}/messages?limit={PAGE} as the owner "
            f"({args.messages} messages of three authors, each decrypted)",
            "database": "SecantusDB on disk, --sync-on-commit (as mmgen up)",
            "client": "httpx in this process, same host",
            "file_chunk_bytes": CHUNK_BYTES,
            "args": vars(args),
        },
        "machine": host_machine,
        "results": results,
        "summary": summarise(results),
        "load_average_at_end": os.getloadavg(),
        "host_cpu_shares_during_run": host_cpu_shares(ticks_at_start, host_cpu_ticks()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

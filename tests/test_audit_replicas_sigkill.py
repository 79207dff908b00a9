"""Issue 10, acceptance: two replicas each of identity and consent under a write load; the
replica of each that holds its lease (identity's relay, consent's audit log) is killed with
SIGKILL mid-run.

Writers register accounts and correct them at identity and grant and withdraw a consent at
consent, spreading their requests over the replicas that live. Afterwards:
- the log holds every event of identity's and consent's event stores (read-only, in their
  databases: the source of truth), each exactly once;
- `audit.log` carries every entry of the log exactly once (the surviving leader skips what
  the killed one had sent past its cursor);
- the chain and the Merkle tree verify (server side, and here from the entries themselves
  against the latest signed head, with the log's public key).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from mmgen.auditlog.verify import verify_log
from mmgen.events.topics import Topics
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import (
    AUDIT_PURPOSE,
    audit_entries,
    new_password,
    publish_policy,
    staff_member,
)

WRITERS = 4
CATCH_UP_S = 90.0
SURVIVORS_TAKE_OVER_S = 30.0
PURPOSE = "marketing.email"


async def until(what: str, check: Callable[[], Awaitable[bool]], within_s: float) -> float:
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within_s, f"{what}: not within {within_s} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def test_sigkill_of_the_leading_replicas_loses_and_doubles_nothing(
    replica_stack: Any, infra: Infra, topic_records: Any
) -> None:
    stack = replica_stack
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    dbs = {name: mongo[stack.database(name)] for name in ("identity", "consent")}
    live = {name: [r.url for r in stack.of(name)] for name in ("identity", "consent")}
    turn = itertools.count()

    def pick(service: str) -> str:
        urls = live[service]
        return urls[next(turn) % len(urls)]

    async def store_seqs(service: str) -> dict[str, int]:
        """event_id → producer_seq of every numbered event in the service's store."""
        return {
            d["_id"]: int(d["producer_seq"])
            async for d in dbs[service]["events"].find(
                {"producer_seq": {"$gte": 1}}, projection={"producer_seq": 1}
            )
        }

    async def leader_pid(service: str, lease: str) -> int:
        doc = await dbs[service]["relay_state"].find_one({"_id": lease})
        assert doc is not None and doc.get("owner"), f"{service}: nobody holds {lease}"
        return int(str(doc["owner"]).split(":")[1])

    http = service_client(30.0)
    try:
        # Admin and officer sign in at one replica, where their authenticators are enrolled
        # (and before any replica is killed).
        first_identity = live["identity"][0]
        admin = await people.sign_in(http, first_identity, stack.admin_email, stack.admin_password)
        version = f"rep-{secrets.token_hex(3)}"
        await publish_policy(http, pick("consent"), admin, version, "Consent under replicas.")
        officer = await staff_member(http, first_identity, admin, "compliance")
        audit_headers = people.bearer(officer.token, **AUDIT_PURPOSE)

        # --- the write load: every request to a replica that lives (as a load balancer) ------
        stop = asyncio.Event()
        errors: list[str] = []
        written: Counter[str] = Counter()

        async def write(n: int) -> None:
            while not stop.is_set():
                email, pw = f"r{n}-{secrets.token_hex(5)}@example.test", new_password()
                try:
                    body = {"email": email, "password": pw, "name": "Writer", "role": "client"}
                    _, client = await people.register(http, pick("identity"), body)
                    written["register"] += 1
                    bearer = people.bearer(client)
                    response = await http.patch(
                        f"{pick('identity')}/users/me",
                        json={"name": f"Writer {secrets.token_hex(3)}"},
                        headers=bearer,
                    )
                    assert response.status_code == 200, response.text
                    written["correct"] += 1
                    for granted in (True, False):
                        response = await http.put(
                            f"{pick('consent')}/consents/me/{PURPOSE}",
                            json={"granted": granted, "policy_version": version},
                            headers=bearer,
                        )
                        assert response.status_code == 200, response.text
                        written["consent"] += 1
                except httpx.TransportError:
                    # A request in flight to a replica as it was killed: the client retries
                    # elsewhere (what it did may or may not be stored; the stores tell).
                    written["lost with a killed replica"] += 1
                except AssertionError as exc:
                    errors.append(str(exc)[:300])
                    await asyncio.sleep(0.2)

        writers = [asyncio.create_task(write(n)) for n in range(WRITERS)]
        killed: dict[str, int] = {}
        try:

            async def flowing() -> bool:
                return written["consent"] >= 10 and written["correct"] >= 10

            await until("the writes flow through both replicas", flowing, 60)
            # Kill the replica that holds each lease, while the writers write.
            for service, lease in (("identity", "identity"), ("consent", "audit-log")):
                pid = await leader_pid(service, lease)
                victim = next(r for r in stack.of(service) if r.pid == pid)
                live[service] = [u for u in live[service] if u != victim.url]
                os.kill(pid, signal.SIGKILL)
                killed[service] = pid
            at_kill = dict(written)

            async def more_written() -> bool:
                # A round's worth from every writer at both services shows the survivors take
                # writes; how many more they take in a while is throughput, set by the load.
                consents = written["consent"] - at_kill.get("consent", 0)
                corrections = written["correct"] - at_kill.get("correct", 0)
                return consents >= 2 * WRITERS and corrections >= WRITERS

            # Within SURVIVORS_TAKE_OVER_S: a replica killed inside a transaction leaves it
            # open, and what it wrote (the event store's counter) stays locked until the
            # database reaps it — 60 s by default, 10 s as the local stack starts it
            # (libs/localstack README, "Transactions of a killed client").
            await until("the survivors take the writes", more_written, SURVIVORS_TAKE_OVER_S)
        finally:
            stop.set()
            await asyncio.gather(*writers, return_exceptions=True)
        assert errors == [], f"the surviving replicas refused writes: {errors[:3]}"

        # --- the log: every stored event of both services, exactly once ----------------------
        async def log_entries(**filters: str) -> list[dict[str, Any]]:
            return await audit_entries(http, pick("consent"), officer.token, **filters)

        stored = {name: await store_seqs(name) for name in ("identity", "consent")}
        for name, seqs in stored.items():
            assert sorted(seqs.values()) == list(range(1, len(seqs) + 1)), f"{name}: holes"

        async def log_holds_all() -> bool:
            ids = {e["event_id"] for e in await log_entries()}
            return all(set(seqs) <= ids for seqs in stored.values())

        await until("the log holds every stored event", log_holds_all, CATCH_UP_S)
        entries = await log_entries()
        # Reading the log is itself audited: consent's store (and then the log) grows while
        # the test reads. So: every event stored before is in the log with its seq, and every
        # entry in the log is a stored event with its seq (read after the log).
        now_stored = {name: await store_seqs(name) for name in ("identity", "consent")}
        counts = Counter(e["event_id"] for e in entries)
        assert [i for i, n in counts.items() if n > 1] == [], "events in the log twice"
        for name, seqs in stored.items():
            mine = {e["event_id"]: int(e["producer_seq"]) for e in entries if e["producer"] == name}
            assert {i: mine.get(i) for i in seqs} == seqs, f"{name}: stored, not in the log"
            assert {i: now_stored[name].get(i) for i in mine} == mine, f"{name}: logged, not stored"
        assert [e["seq"] for e in entries] == list(range(len(entries))), "the log has holes"

        # --- chain and tree: server side, then here against the latest signed head -----------
        verified = await http.get(f"{pick('consent')}/audit/verify", headers=audit_headers)
        assert verified.status_code == 200, verified.text
        assert verified.json()["valid"] is True, verified.json()
        public_key = (await http.get(f"{pick('consent')}/audit/public-key")).text.strip()

        async def signed_head_covers_all() -> bool:
            latest = await http.get(
                f"{pick('consent')}/audit/checkpoints/latest", headers=audit_headers
            )
            return latest.status_code == 200 and latest.json()["tree_size"] >= len(entries)

        await until("a signed head covers the whole log", signed_head_covers_all, 60)
        latest = (
            await http.get(f"{pick('consent')}/audit/checkpoints/latest", headers=audit_headers)
        ).json()
        entries = await log_entries()  # read after the head: it holds at least what it signs
        checked = verify_log(entries, checkpoint_note=latest["note"], verifier_key=public_key)
        assert checked.valid and checked.checked == len(entries), checked

        # --- audit.log: every entry once ------------------------------------------------------
        topic = Topics(stack.config.topic_prefix).audit_log
        seqs: Counter[int] = Counter()

        async def published_all() -> bool:
            nonlocal seqs
            records = await topic_records(infra.kafka_bootstrap, topic)
            seqs = Counter(int(dict(r.headers)["seq"]) for r in records)
            return set(seqs) >= set(range(len(entries)))

        await until("audit.log carries every entry", published_all, 60)
        assert [s for s, n in seqs.items() if n > 1] == [], "entries on audit.log twice"
        # at or past the entries read: the log grows as the test reads it (audited reads)
        assert set(seqs) == set(range(max(seqs) + 1)), "audit.log skipped entries"

        print(
            f"written {dict(written)}; killed {killed}; log {len(entries)} entries "
            f"(identity {len(stored['identity'])}, consent {len(stored['consent'])})"
        )
    finally:
        await http.aclose()
        await mongo.close()

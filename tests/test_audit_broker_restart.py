"""Issue 6, acceptance: the broker restarts empty while identity keeps writing, and the audit
log ends with every identity event, exactly once — after the gap repair.

The broker is the test's own (`own_broker_stack`), so it can be stopped and started again on the
same port, empty, as the local broker always comes back. To make the loss certain rather than a
matter of timing, consent is paused (SIGSTOP) before the broker goes: what identity publishes
meanwhile is acked by the old broker and, once that broker is gone, exists only in identity's
event store. Only the audit projector's gap repair (a republish request that identity serves
from its store) can bring those events into the log.

What the log must hold is identity's own event store (read-only, in its database), never the log.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from itertools import groupby
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from mmgen.events.republish import (
    AUDIT_LOG_PRODUCER,
    RepublishRequest,
    republish_topic,
    send_republish_request,
)
from mmgen.events.topics import Topics
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import audit_entries, compliance_officer, new_password

WRITERS = 2
CATCH_UP_S = 60.0
"""Longest wait for the log to hold everything (gap repair: 5 s delay, then group joins)."""
LOG_POLL_S = 0.5
"""Pause between two reads of the whole log or topic: each reads every entry, and a read of
the log is itself audited, so polling them as often as a counter loads the consent it waits
for (each read took 150 to 660 ms under the suite's load)."""


async def until(
    what: str, check: Callable[[], Awaitable[bool]], within_s: float, every: float = 0.1
) -> float:
    """Poll `check` every `every` s until it holds; fail naming `what` at the deadline.
    Returns the wait."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within_s, f"{what}: not within {within_s} s"
        await asyncio.sleep(every)
    return time.monotonic() - start


async def ask_for_audit_entries(stack: Any, seqs: list[int]) -> None:
    """Send consent one republish request per run of consecutive `seqs` of the audit log."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.address, acks="all")
    await producer.start()
    try:
        topic = republish_topic(stack.config.topic_prefix)
        # Consecutive seqs share `seq - position`: each group is one run.
        for _, run in groupby(enumerate(seqs), key=lambda pair: pair[1] - pair[0]):
            numbers = [seq for _, seq in run]
            request = RepublishRequest(
                AUDIT_LOG_PRODUCER, numbers[0], numbers[-1], requested_by="test"
            )
            await send_republish_request(producer, topic, request)
    finally:
        await producer.stop()


def counter(metrics: str, name: str, producer: str) -> float:
    """A Prometheus counter's value for one producer (0 when it was never incremented)."""
    found = re.search(rf'^{name}\{{producer="{producer}"\}} (\S+)$', metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_broker_restart_while_identity_writes_loses_nothing_in_the_audit_log(
    own_broker_stack: Any, infra: Infra, topic_records: Any
) -> None:
    stack = own_broker_stack
    identity, consent = stack.url("identity"), stack.url("consent")
    consent_pid = stack.pid("consent")
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    identity_db = mongo[stack.database("identity")]  # read only

    async def last_seq() -> int:
        doc = await identity_db["events_counters"].find_one({"_id": "identity"})
        return int(doc["seq"]) if doc else 0

    async def relay_checkpoint() -> int:
        doc = await identity_db["relay_state"].find_one({"_id": "identity"})
        return int(doc.get("checkpoint", 0)) if doc else 0

    http = service_client(30.0)
    try:

        async def token(email: str, pw: str) -> str:
            return await people.sign_in(http, identity, email, pw)

        officer = await compliance_officer(http, stack)
        audit_headers = officer.audit_headers()

        async def log_entries(**filters: str) -> list[dict[str, Any]]:
            return await audit_entries(http, consent, officer.token, **filters)

        async def log_holds(first: int, last: int) -> bool:
            held = {int(e["producer_seq"]) for e in await log_entries(producer="identity")}
            return set(range(first, last + 1)) <= held

        # --- identity keeps writing: registrations and corrections, from several clients -----
        stop = asyncio.Event()
        errors: list[str] = []
        written: Counter[str] = Counter()

        async def write(n: int) -> None:
            while not stop.is_set():
                email, pw = f"w{n}-{secrets.token_hex(5)}@example.test", new_password()
                try:
                    response = await http.post(
                        f"{identity}/auth/register",
                        json={"email": email, "password": pw, "name": "Writer", "role": "client"},
                    )
                    assert response.status_code == 202, response.text
                    written["register"] += 1
                    response = await http.patch(
                        f"{identity}/users/me",
                        json={
                            "name": f"Writer {secrets.token_hex(3)}",
                            "phone": "+44 20 7946 0000",
                        },
                        headers={"Authorization": f"Bearer {await token(email, pw)}"},
                    )
                    assert response.status_code == 200, response.text
                    written["correct"] += 1
                except (AssertionError, httpx.HTTPError) as exc:
                    errors.append(repr(exc))
                    await asyncio.sleep(0.2)

        writers = [asyncio.create_task(write(n)) for n in range(WRITERS)]
        paused = False
        timeline: dict[str, float] = {}
        try:

            async def pipeline_live() -> bool:
                return written["correct"] >= 2 and await log_holds(1, 5)

            await until("the writers' events reach the log", pipeline_live, 30, LOG_POLL_S)

            # consent falls behind: what identity publishes now, only the old broker holds.
            os.kill(consent_pid, signal.SIGSTOP)
            paused = True
            before = await relay_checkpoint()

            async def published_unread() -> bool:
                return await relay_checkpoint() >= before + 5

            await until("identity publishes while consent is paused", published_unread, 20)

            # The broker goes, and comes back empty on its port; identity writes throughout.
            stack.stop_broker()
            at_stop = await last_seq()

            async def written_in_outage() -> bool:
                return await last_seq() >= at_stop + 5

            await until("identity writes while the broker is down", written_in_outage, 20)
            stack.start_broker()
            restarted = time.monotonic()
            os.kill(consent_pid, signal.SIGCONT)
            paused = False
            at_restart = await last_seq()

            async def written_after_restart() -> bool:
                return await last_seq() >= at_restart + 5

            await until("identity writes after the restart", written_after_restart, 20)

            # Identity keeps writing until the log holds everything written so far: the events
            # the old broker took with it too, which only a gap repair can bring back.
            target = await last_seq()

            async def caught_up() -> bool:
                return await log_holds(1, target)

            await until(
                "the log catches up while identity writes", caught_up, CATCH_UP_S, LOG_POLL_S
            )
            timeline["caught up after the restart"] = time.monotonic() - restarted
        finally:
            stop.set()
            await asyncio.gather(*writers, return_exceptions=True)
            if paused:
                os.kill(consent_pid, signal.SIGCONT)
        assert errors == [], f"identity refused writes around the broker restart: {errors[:3]}"

        # --- the log ends with every event of identity's store, exactly once -----------------
        last = await last_seq()
        stored = {
            d["_id"]: d["producer_seq"]
            async for d in identity_db["events"].find(
                {"producer_seq": {"$gte": 1, "$lte": last}}, projection={"producer_seq": 1}
            )
        }
        assert sorted(stored.values()) == list(range(1, last + 1)), "identity's store has holes"

        async def complete() -> bool:
            return await log_holds(1, last)

        timeline["tail in the log after the writers stopped"] = await until(
            "every identity event in the log", complete, CATCH_UP_S, LOG_POLL_S
        )
        entries = await log_entries(producer="identity")
        counts = Counter(e["event_id"] for e in entries)
        assert [i for i, n in counts.items() if n > 1] == [], "events in the log twice"
        assert set(counts) == set(stored), "log entries identity never stored, or missing ones"
        assert sorted(int(e["producer_seq"]) for e in entries) == list(range(1, last + 1))
        assert all(stored[e["event_id"]] == int(e["producer_seq"]) for e in entries)

        # --- ... because the gap was repaired: asked for, served by identity, closed ----------
        consent_metrics = (await http.get(f"{consent}/metrics")).text
        identity_metrics = (await http.get(f"{identity}/metrics")).text
        repairs = {
            "repair requests": counter(
                consent_metrics, "mmgen_audit_repair_requests_total", "identity"
            ),
            "gaps repaired": counter(
                consent_metrics, "mmgen_audit_gaps_repaired_total", "identity"
            ),
            "republished by identity": counter(
                identity_metrics, "mmgen_events_relay_republished_total", "identity"
            ),
        }
        assert all(value >= 1 for value in repairs.values()), repairs

        # Consent's own events (each audited read above is one) may sit in a hole for a moment:
        # they travel on several partitions. The projector must close every hole, not be gapless
        # at one instant.
        async def no_open_gaps() -> bool:
            ready = await http.get(f"{consent}/readyz")
            assert ready.status_code == 200, ready.text
            return ready.json()["checks"]["audit-projector"] == "no open gaps"

        await until("consent's readiness reports no open gaps", no_open_gaps, CATCH_UP_S)
        verified = await http.get(f"{consent}/audit/verify", headers=audit_headers)
        assert verified.status_code == 200, verified.text
        assert verified.json()["valid"] is True, verified.json()

        # --- audit.log on the new broker: what the publisher sent after the restart, gapless --
        head = len(await log_entries())
        topic = Topics(stack.config.topic_prefix).audit_log
        seqs: list[int] = []

        async def read_seqs() -> list[int]:
            """The `seq` of every message on the new broker's audit.log, in order, once each."""
            nonlocal seqs
            records = await topic_records(stack.broker.address, topic)
            seqs = sorted({int(dict(r.headers)["seq"]) for r in records})
            return seqs

        async def published_to_head() -> bool:
            found = await read_seqs()
            # at or past it: reading the log is itself audited, so the log grows as we look
            return bool(found) and found[-1] >= head - 1

        await until("the audit.log publisher reaches the head", published_to_head, 30, LOG_POLL_S)
        # The local broker can drop writes acked in the first moments after an empty restart
        # (libs/localstack/README.md). A reader missing an entry asks consent for it again, as
        # retention's audit feed does: every entry the log holds must then be on the topic.
        missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
        if missing:
            await ask_for_audit_entries(stack, missing)

            async def contiguous() -> bool:
                found = await read_seqs()
                return found == list(range(found[0], found[-1] + 1))

            await until(
                "consent publishes the missing entries again", contiguous, CATCH_UP_S, LOG_POLL_S
            )

        print(
            f"written {dict(written)}: {last} identity events; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timeline.items())
            + f"; {repairs}; audit.log on the new broker from seq {seqs[0]} of {head}"
            + (f", {len(missing)} dropped by the broker and asked for again" if missing else "")
        )
    finally:
        await http.aclose()
        await mongo.close()

"""Issue 6, acceptance: identity's events reach the audit log exactly once, as ids.

identity and consent run as their own processes (the session's `system`). The test drives
identity over HTTP like the gateway would — register, correct, a staff read, close — and reads
the log as a compliance officer over consent's HTTP API. What the log must hold is not taken
from the log itself: it is identity's own event store (read-only, in its database) and what is
on `identity.events` (read back from Kafka by a consumer of the test's own), checked against
what the test did.

How fast they get there (the aim is 2 s from identity's answer) is measured by
`bench/bench_audit_latency.py`, not here: the test waits with a generous deadline and checks
only what arrived.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from mmgen.events.topics import Topics
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import Member, new_password, staff_member

WAIT_S = 60.0
"""Longest wait for an entry to be served by the audit API (correctness, not speed)."""
WARM_UP_S = 60.0
POLL_S = 0.05
ENTRY_MEMBERS = {
    "seq",
    "event_id",
    "producer",
    "producer_seq",
    "event_type",
    "action",
    "subject_id",
    "actor_id",
    "actor_role",
    "purpose",
    "resource",
    "categories",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
}


@dataclass
class Seen:
    """One expected entry and the step that caused it."""

    step: str
    event_type: str
    entry: dict[str, Any]


class AuditReader:
    """A compliance officer reading consent's `/audit/entries`."""

    def __init__(self, http: httpx.AsyncClient, consent_url: str, token: str) -> None:
        self.http = http
        self.url = f"{consent_url}/audit/entries"
        self.headers = {"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"}
        self.raw_pages: list[str] = []

    async def entries(self, **filters: str) -> list[dict[str, Any]]:
        """Every entry matching the filters (all pages)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {**filters, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            response = await self.http.get(self.url, params=params, headers=self.headers)
            assert response.status_code == 200, response.text
            self.raw_pages.append(response.text)
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def wait_for(self, step: str, subject_id: str, event_types: list[str]) -> list[Seen]:
        """Poll until each type is in the log for the subject (failing after `WAIT_S`)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            found: dict[str, dict[str, Any]] = {}
            for entry in await self.entries(subject_id=subject_id):
                found.setdefault(entry["event_type"], entry)
            missing = sorted(set(event_types) - set(found))
            if not missing:
                return [Seen(step, t, found[t]) for t in event_types]
            assert time.monotonic() < deadline, (
                f"{step}: {missing} for {subject_id} not in the audit log after {WAIT_S} s"
            )
            await asyncio.sleep(POLL_S)


async def test_identity_events_reach_the_audit_log_once_without_contents(
    system: Any, infra: Infra, topic_records: Any
) -> None:
    identity, consent = system.url("identity"), system.url("consent")
    tag = secrets.token_hex(4)
    secrets_of_test: list[str] = []

    def personal(value: str) -> str:
        secrets_of_test.append(value)
        return value

    seen: list[Seen] = []
    async with service_client(10.0) as http:

        def bearer(tok: str, **extra: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tok}", **extra}

        admin = await people.sign_in(http, identity, system.admin_email, system.admin_password)
        me = await http.get(f"{identity}/users/me", headers=bearer(admin))
        admin_id = me.json()["user_id"]

        # The pipeline is live (the projector joined its group and reads identity.events)
        # once the bootstrap admin's registration is in the log.
        metrics_url = f"{consent}/metrics"
        warm = time.monotonic() + WARM_UP_S
        while True:
            text = (await http.get(metrics_url)).text
            if 'mmgen_audit_entries_appended_total{producer="identity"}' in text:
                break
            assert time.monotonic() < warm, "the audit projector never appended identity events"
            await asyncio.sleep(0.1)

        # --- an admin creates a compliance officer (who reads the log) and a staff member ---
        created: dict[str, Member] = {}
        reader: AuditReader | None = None
        for role in ("compliance", "staff"):
            created[role] = await staff_member(
                http,
                identity,
                admin,
                role,
                email=personal(f"{role}-{tag}@example.test"),
                name=personal(f"{role.title()} Quillfeather {tag}"),
            )
            if reader is None:
                reader = AuditReader(http, consent, created[role].token)
            seen += await reader.wait_for(
                f"admin creates {role}", created[role].user_id, ["identity.UserRegistered"]
            )
        assert reader is not None

        # --- a client registers ------------------------------------------------------------
        client_email = personal(f"Client.{tag}@Example.test")
        client_pw = new_password()
        client_id, client = await people.register(
            http,
            identity,
            {
                "email": client_email,
                "password": client_pw,
                "name": personal(f"Zoë Brightwater {tag}"),
                "phone": personal(f"+44 20 7946 {secrets.randbelow(10_000):04d}"),
                "role": "client",
                "business": {
                    "company_name": personal(f"Quokka Studios {tag}"),
                    "vat_number": personal(f"GB{secrets.randbelow(10**9):09d}"),
                    "address": personal(f"{tag} Lantern Street, Bristol"),
                },
            },
        )
        secrets_of_test.append(client_email.lower())
        seen += await reader.wait_for("client registers", client_id, ["identity.UserRegistered"])

        # --- the client corrects their name and phone ----------------------------------------
        response = await http.patch(
            f"{identity}/users/me",
            json={
                "name": personal(f"Zoë Brightwater-Okafor {tag}"),
                "phone": personal(f"+44 117 496 {secrets.randbelow(10_000):04d}"),
            },
            headers=bearer(client),
        )
        assert response.status_code == 200, response.text
        seen += await reader.wait_for(
            "client corrects name and phone",
            client_id,
            ["identity.NameCorrected", "identity.PhoneCorrected"],
        )

        # --- staff reads the client's account for support --------------------------------------
        staff = created["staff"].token
        response = await http.get(
            f"{identity}/users/{client_id}", headers=bearer(staff, **{"X-Purpose": "support"})
        )
        assert response.status_code == 200, response.text
        assert response.json()["email"] == client_email.lower()  # staff did see the contents
        seen += await reader.wait_for("staff reads", client_id, ["identity.UserRead"])

        # --- the client closes the account -----------------------------------------------------
        response = await http.request(
            "DELETE",
            f"{identity}/users/me",
            headers=bearer(client),
            json={"current_password": client_pw},
        )
        assert response.status_code == 204, response.text
        seen += await reader.wait_for("client closes", client_id, ["identity.AccountClosed"])

        # --- what the log must say about each step (from what the test did) -------------------
        staff_id, compliance_id = created["staff"].user_id, created["compliance"].user_id
        expected = {
            ("admin creates compliance", "identity.UserRegistered"): {
                "subject_id": compliance_id,
                "action": "create",
                "actor_id": admin_id,
                "actor_role": "admin",
                "purpose": None,
                "resource": {"type": "user", "id": compliance_id},
                "categories": ["contact", "business", "account"],
            },
            ("admin creates staff", "identity.UserRegistered"): {
                "subject_id": staff_id,
                "action": "create",
                "actor_id": admin_id,
                "actor_role": "admin",
                "purpose": None,
                "resource": {"type": "user", "id": staff_id},
                "categories": ["contact", "business", "account"],
            },
            ("client registers", "identity.UserRegistered"): {
                "subject_id": client_id,
                "action": "create",
                "actor_id": client_id,
                "actor_role": "client",
                "purpose": None,
                "resource": {"type": "user", "id": client_id},
                "categories": ["contact", "business", "account"],
            },
            ("client corrects name and phone", "identity.NameCorrected"): {
                "subject_id": client_id,
                "action": "update",
                "actor_id": client_id,
                "actor_role": "client",
                "purpose": None,
                "resource": {"type": "user", "id": client_id},
                "categories": ["contact"],
            },
            ("client corrects name and phone", "identity.PhoneCorrected"): {
                "subject_id": client_id,
                "action": "update",
                "actor_id": client_id,
                "actor_role": "client",
                "purpose": None,
                "resource": {"type": "user", "id": client_id},
                "categories": ["contact"],
            },
            ("staff reads", "identity.UserRead"): {
                "subject_id": client_id,
                "action": "read",
                "actor_id": staff_id,
                "actor_role": "staff",
                "purpose": "support",
                "resource": {"type": "user", "id": client_id},
                "categories": ["contact", "business"],
            },
            ("client closes", "identity.AccountClosed"): {
                "subject_id": client_id,
                "action": "delete",
                "actor_id": client_id,
                "actor_role": "client",
                "purpose": None,
                "resource": {"type": "user", "id": client_id},
                "categories": ["account"],
            },
        }
        assert {(s.step, s.event_type) for s in seen} == set(expected)
        for s in seen:
            want = expected[(s.step, s.event_type)]
            got = {k: s.entry[k] for k in want}
            got["categories"] = sorted(got["categories"])
            assert got == {**want, "categories": sorted(want["categories"])}, s.step
            assert set(s.entry) == ENTRY_MEMBERS, f"{s.step}: members {sorted(s.entry)}"
            assert s.entry["producer"] == "identity"

        # --- exactly once, and nothing of identity's missing (checked against its own store
        #     and against what is on identity.events, never against the log itself) ------------
        mongo: AsyncMongoClient[Any] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
        try:
            store = mongo[system.config.database_prefix + "identity"]["events"]
            stored = {d["_id"]: d async for d in store.find({}, projection={"pii": 0, "data": 0})}
        finally:
            await mongo.close()
        ours = {client_id, staff_id, compliance_id}
        # Staff and compliance enrolled TOTP (their tokens need a second factor): one pair each,
        # in the log like every other event (checked below); the steps' events are the rest.
        enrolment = {"identity.TotpEnrolled", "identity.TotpActivated"}
        enrolled = Counter(
            (d.get("subject_id"), d["event_type"])
            for d in stored.values()
            if d["event_type"] in enrolment and d.get("subject_id") in ours
        )
        pairs = [(p, t) for p in (staff_id, compliance_id) for t in enrolment]
        assert enrolled == Counter(pairs)
        ours_stored = {
            i: d
            for i, d in stored.items()
            if d.get("subject_id") in ours and d["event_type"] not in enrolment
        }
        assert len(ours_stored) == len(expected), sorted(
            d["event_type"] for d in ours_stored.values()
        )
        assert {s.entry["event_id"] for s in seen} == set(ours_stored)

        # Every event identity ever stored is in the log, once (poll: the last are in flight).
        log_ids: Counter[str] = Counter()
        deadline = time.monotonic() + 10
        while True:
            everything = await reader.entries(producer="identity")
            log_ids = Counter(e["event_id"] for e in everything)
            if set(stored) <= set(log_ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert set(stored) - set(log_ids) == set(), "identity events missing from the log"
        assert set(log_ids) - set(stored) == set(), "log entries no identity event stands for"
        assert [i for i, n in log_ids.items() if n > 1] == [], "events in the log twice"
        by_id = {e["event_id"]: e for e in everything}
        for event_id, doc in stored.items():
            entry = by_id[event_id]
            actor = doc.get("actor") or {}
            resource = doc.get("resource") or None
            assert (
                entry["event_type"],
                int(entry["producer_seq"]),
                entry["subject_id"],
                entry["action"],
                entry["actor_id"],
                entry["actor_role"],
                entry["purpose"],
                entry["resource"],
                sorted(entry["categories"]),
            ) == (
                doc["event_type"],
                doc["producer_seq"],
                doc.get("subject_id"),
                doc["action"],
                actor.get("id"),
                actor.get("role"),
                doc.get("purpose"),
                resource and {"type": resource["type"], "id": resource["id"]},
                sorted(doc.get("categories") or []),
            ), event_id
        seqs = sorted(int(e["producer_seq"]) for e in everything)
        assert seqs == list(range(1, len(stored) + 1))

        records = await topic_records(
            infra.kafka_bootstrap, Topics(system.config.topic_prefix).events("identity")
        )
        on_kafka = [json.loads(r.value)["event_id"] for r in records]
        assert set(on_kafka) == set(stored), "identity.events and identity's store differ"
        assert set(on_kafka) <= set(log_ids), "on identity.events but not in the log"

        # --- no personal contents anywhere in what the log served ----------------------------
        served = "\n".join(reader.raw_pages)
        for value in secrets_of_test:
            assert value.lower() not in served.lower(), f"personal value {value!r} in the log"
        for pw in (client_pw, created["staff"].password, created["compliance"].password):
            assert pw not in served

"""Forged messages on the broker are refused: erasure orders retention did not sign, and events
claiming a producer whose topic they did not come on.

Anyone able to write to `retention.commands` could otherwise erase any subject. A subject
registers at identity; an `EraseSubject` naming them is published twice on the system's
`retention.commands` — unsigned, and signed with a key that is not retention's. Every service
that obeys commands counts both refusals (`retention_commands_refused_total` on its
`/metrics`); then, from each service's own event store (read only): no `SubjectErased` for the
subject, and one `AccessDenied` refusal per forged command. The subject still signs in.

Anyone able to write to `consent.events` could otherwise write into identity's audit trail: an
envelope claiming producer `identity` there is counted by consent's audit log
(`mmgen_audit_refused_total`), parked in `consent.events.dlq` with the reason, and is neither an
entry of the log (its `audit_pages`, read only) nor a number in identity's progress.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from typing import Any

from pymongo import AsyncMongoClient

from mmgen.auditlog.receipt import ReceiptSigner
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.platform.http import service_client
from mmgen.runtime.testing import erase_command, publish
from tests import people

from .conftest import RunningSystem

#: The services that obey retention's commands (the witness holds no personal data).
OBEYING = ("identity", "projects", "profiles", "consent", "retention")
DEADLINE_S = 60.0
#: A number identity will not reach in a test: taken, it would open a hole below it.
FORGED_SEQ = 1_000_000


def _refusals(metrics: str, reason: str) -> float:
    found = re.search(
        rf'^retention_commands_refused_total\{{reason="{reason}"\}} ([0-9.e+]+)$', metrics, re.M
    )
    return float(found.group(1)) if found else 0.0


async def _register(identity: str) -> tuple[str, str, str]:
    email, password = f"forge-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
    body = {"email": email, "password": password, "name": "Ada Forge", "role": "creator"}
    async with service_client(10) as http:
        user_id, _ = await people.register(http, identity, body)
    return user_id, email, password


async def test_forged_erase_orders_are_refused_everywhere_and_erase_nothing(
    system: RunningSystem,
) -> None:
    services = [s for s in OBEYING if system.has(s)]
    assert "identity" in services and "retention" in services
    subject, email, password = await _register(system.url("identity"))

    unsigned = erase_command(subject, signer=None)
    impostor = erase_command(subject, signer=ReceiptSigner(secrets.token_bytes(32)))
    topic = f"{system.config.topic_prefix}retention.commands"
    await publish(system.config.kafka_bootstrap, topic, unsigned, impostor)

    async with service_client(10) as http:
        pending = set(services)
        deadline = time.monotonic() + DEADLINE_S
        while pending:
            for service in sorted(pending):
                metrics = (await http.get(f"{system.url(service)}/metrics")).text
                if _refusals(metrics, "unsigned") >= 1 and _refusals(metrics, "unknown_key") >= 1:
                    pending.discard(service)
            assert time.monotonic() < deadline, f"not refused within {DEADLINE_S} s: {pending}"
            await asyncio.sleep(0.2)

        signed_in = await http.post(
            f"{system.url('identity')}/auth/token", json={"email": email, "password": password}
        )
        assert signed_in.status_code == 200, signed_in.text

    mongo: Any = AsyncMongoClient(system.config.mongo_uri, tz_aware=True)
    try:
        for service in services:
            events = mongo[system.database(service)]["events"]
            about = [e async for e in events.find({"subject_id": subject})]
            assert not [e for e in about if e["event_type"].endswith(".SubjectErased")], service
            refusals = sorted(
                (e["causation_id"], e["data"]["reason"])
                for e in about
                if e["event_type"] == f"{service}.AccessDenied"
                and e["data"].get("code") == "command_refused"
            )
            assert refusals == sorted(
                [(unsigned.event_id, "unsigned"), (impostor.event_id, "unknown_key")]
            ), service
    finally:
        await mongo.close()


async def test_an_envelope_claiming_identity_on_consents_topic_is_not_audited(
    system: RunningSystem, topic_records: Any
) -> None:
    forged = Envelope(
        event_type="identity.UserRegistered",
        schema_version=1,
        producer="identity",
        producer_seq=FORGED_SEQ,
        stream_id=f"user-{uuid.uuid4()}",
        stream_version=1,
        subject_id=str(uuid.uuid4()),
        actor=Actor(id="identity", role="service"),
        action="create",
        resource=Resource(type="user", id=str(uuid.uuid4())),
    )
    topic = f"{system.config.topic_prefix}consent.events"
    await publish(system.config.kafka_bootstrap, topic, forged)

    refused = 'mmgen_audit_refused_total{topic_producer="consent"}'
    async with service_client(10) as http:
        deadline = time.monotonic() + DEADLINE_S
        while refused not in (await http.get(f"{system.url('consent')}/metrics")).text:
            assert time.monotonic() < deadline, f"consent did not refuse within {DEADLINE_S} s"
            await asyncio.sleep(0.2)

    parked = [
        r
        for r in await topic_records(system.config.kafka_bootstrap, f"{topic}.dlq")
        if Envelope.from_wire(r.value).event_id == forged.event_id
    ]
    assert len(parked) == 1
    assert "producer 'identity'" in dict(parked[0].headers)["dlq_error_message"].decode()

    mongo: Any = AsyncMongoClient(system.config.mongo_uri, tz_aware=True)
    try:
        db = mongo[system.database("consent")]
        assert await db["audit_pages"].find_one({"event_id": forged.event_id}) is None
        identity = await db["audit_producers"].find_one({"_id": "identity"}) or {}
        assert int(identity.get("highest") or 0) < FORGED_SEQ
        assert all(end < FORGED_SEQ for _, end in identity.get("ranges") or [])
    finally:
        await mongo.close()

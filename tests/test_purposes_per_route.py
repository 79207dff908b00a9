"""Purposes per route, against the running services: a staff or compliance read declaring a
purpose the route does not accept is refused (403 `purpose-not-allowed`, naming the route's
purposes), reads nothing, and its refusal reaches the audit log as `<service>.AccessDenied`
with the purpose that was declared.

Identity's account read accepts support, security, legal_compliance and payment_processing
(not project_execution); consent's read of someone's decisions support, legal_compliance and
security (not payment_processing); the audit log legal_compliance only. What is checked
comes from outside the refused route: the audit log over consent's API, and identity's own
event store (read-only).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import new_password, staff_member

WAIT_S = 60.0
POLL_S = 0.2


def _refused(response: httpx.Response, allowed: list[str], secret: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:mmgen:problem:purpose-not-allowed"
    assert body["allowed_purposes"] == allowed
    assert secret not in response.text  # nothing of the subject was read


async def test_a_purpose_the_route_does_not_accept_reads_nothing_and_is_audited(
    system: Any, infra: Infra
) -> None:
    identity, consent = system.url("identity"), system.url("consent")
    async with service_client(15.0) as http:
        admin = await people.sign_in(http, identity, system.admin_email, system.admin_password)
        staff = await staff_member(http, identity, admin, "staff")
        officer = await staff_member(http, identity, admin, "compliance")
        email = f"client-{secrets.token_hex(4)}@example.test"
        client_id, _ = await people.register(
            http,
            identity,
            {"email": email, "password": new_password(), "name": "Ada Client", "role": "client"},
        )

        wrong = people.bearer(staff.token, **{"X-Purpose": "project_execution"})
        _refused(
            await http.get(f"{identity}/users/{client_id}", headers=wrong),
            ["legal_compliance", "payment_processing", "security", "support"],
            email,
        )
        billing = people.bearer(staff.token, **{"X-Purpose": "payment_processing"})
        _refused(
            await http.get(f"{consent}/consents/{client_id}", headers=billing),
            ["legal_compliance", "security", "support"],
            email,
        )
        snooping = people.bearer(officer.token, **{"X-Purpose": "security"})
        audit = f"{consent}/audit/entries"
        _refused(
            await http.get(audit, params={"subject_id": client_id}, headers=snooping),
            ["legal_compliance"],
            email,
        )

        # The refusals, as the audit log holds them (read for the legal purpose).
        reader = people.bearer(officer.token, **{"X-Purpose": "legal_compliance"})

        async def denials(actor_id: str) -> dict[str, dict[str, Any]]:
            response = await http.get(
                audit, params={"actor_id": actor_id, "action": "deny"}, headers=reader
            )
            assert response.status_code == 200, response.text
            return {entry["event_type"]: entry for entry in response.json()["items"]}

        wanted = {"identity.AccessDenied", "consent.AccessDenied"}
        deadline = time.monotonic() + WAIT_S
        while not wanted <= set(by_staff := await denials(staff.user_id)):
            assert time.monotonic() < deadline, f"not in the audit log: {wanted - set(by_staff)}"
            await asyncio.sleep(POLL_S)
        account = by_staff["identity.AccessDenied"]
        assert (account["subject_id"], account["purpose"]) == (client_id, "project_execution")
        assert account["actor_role"] == "staff"
        consents = by_staff["consent.AccessDenied"]
        assert (consents["subject_id"], consents["purpose"]) == (client_id, "payment_processing")
        [own] = (await denials(officer.user_id)).values()
        assert (own["event_type"], own["purpose"]) == ("audit.AccessDenied", "security")
        assert own["resource"]["id"] == "/audit/entries"

    # identity recorded no read of the account, only the refusal.
    mongo: Any = AsyncMongoClient(infra.mongo_uri, directConnection=True)
    try:
        events = mongo[system.database("identity")]["events"]
        by_staff_about_client = {"actor.id": staff.user_id, "subject_id": client_id}
        types = await events.distinct("event_type", by_staff_about_client)
    finally:
        await mongo.close()
    assert types == ["identity.AccessDenied"]

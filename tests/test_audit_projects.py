"""Issue 11, acceptance: a project's reads and refusals reach the audit log with the caller's id.

identity, consent and projects run as their own processes (the session's `system`). The test
drives them over HTTP as the gateway would: people register with identity; projects learns
them from `identity.events` (no call to identity); a client makes a project and adds a creator;
they post and read; an outsider and a compliance officer without the right purpose are
refused. What the audit log must hold is taken from projects' own event store (read-only, in
its database): every `projects.DataAccessed` and `projects.AccessDenied` of these callers is
in the log once, under its event id, with the caller as actor — and the log holds no message
text.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from pymongo import AsyncMongoClient

from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import compliance_officer, new_password

DEADLINE_S = 30.0


async def test_project_reads_and_refusals_reach_the_audit_log_with_the_callers_id(
    system: Any, infra: Infra
) -> None:
    identity, consent, projects = (system.url(s) for s in ("identity", "consent", "projects"))
    tag = secrets.token_hex(4)
    async with service_client(15.0) as http:

        def bearer(tok: str, **extra: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tok}", **extra}

        async def register(role: str) -> tuple[str, str]:
            email, pw = f"{role}-{tag}-{secrets.token_hex(3)}@example.test", new_password()
            body = {"email": email, "password": pw, "name": f"{role} {tag}", "role": role}
            return await people.register(http, identity, body)

        compliance = await compliance_officer(http, system)
        officer_id, officer = compliance.user_id, compliance.token
        owner_id, owner = await register("client")
        creator_id, creator = await register("creator")
        outsider_id, outsider = await register("client")

        # --- a project, and a member projects learnt about from identity's events -----------
        made = await http.post(
            f"{projects}/projects",
            json={"title": f"Launch {tag}", "requirements": "Two hosts"},
            headers=bearer(owner),
        )
        assert made.status_code == 201, made.text
        project_id = made.json()["project_id"]
        deadline = time.monotonic() + DEADLINE_S
        while True:
            added = await http.post(
                f"{projects}/projects/{project_id}/members",
                json={"user_id": creator_id, "role": "creator"},
                headers=bearer(owner),
            )
            if added.status_code == 201:
                break
            assert added.status_code == 422, added.text  # not known yet
            assert time.monotonic() < deadline, "projects never learnt the creator from identity"
            await asyncio.sleep(0.2)

        # --- reads and refusals -----------------------------------------------------------
        text = f"Meet at the north gate, code {tag}-{secrets.token_hex(4)}"
        posted = await http.post(
            f"{projects}/projects/{project_id}/messages",
            json={"text": text},
            headers=bearer(creator),
        )
        assert posted.status_code == 201, posted.text
        thread = await http.get(f"{projects}/projects/{project_id}/messages", headers=bearer(owner))
        assert [m["text"] for m in thread.json()["items"]] == [text]
        read = await http.get(f"{projects}/projects/{project_id}", headers=bearer(creator))
        assert read.status_code == 200, read.text
        for path in ("", "/messages", "/files"):
            refused = await http.get(
                f"{projects}/projects/{project_id}{path}", headers=bearer(outsider)
            )
            assert refused.status_code == 404, refused.text
        wrong_purpose = await http.get(
            f"{projects}/projects/{project_id}/messages",
            headers=bearer(officer, **{"X-Purpose": "support"}),
        )
        assert wrong_purpose.status_code == 404, wrong_purpose.text
        no_purpose = await http.get(
            f"{projects}/projects/{project_id}/messages", headers=bearer(officer)
        )
        assert no_purpose.status_code == 403, no_purpose.text
        audited_read = await http.get(
            f"{projects}/projects/{project_id}/messages",
            headers=bearer(officer, **{"X-Purpose": "legal_compliance"}),
        )
        assert audited_read.status_code == 200, audited_read.text

        # --- the source of truth: projects' own store ----------------------------------------
        callers = [owner_id, creator_id, outsider_id, officer_id]
        mongo: Any = AsyncMongoClient(infra.mongo_uri, directConnection=True)
        try:
            store = mongo[system.database("projects")]["events"]
            expected = await store.find(
                {
                    "event_type": {"$in": ["projects.DataAccessed", "projects.AccessDenied"]},
                    "actor.id": {"$in": callers},
                }
            ).to_list(None)
        finally:
            await mongo.close()
        by_kind: dict[tuple[str, str], int] = {}
        for event in expected:
            key = (event["actor"]["id"], event["event_type"])
            by_kind[key] = by_kind.get(key, 0) + 1
        assert by_kind == {
            (owner_id, "projects.DataAccessed"): 1,
            (creator_id, "projects.DataAccessed"): 1,
            (outsider_id, "projects.AccessDenied"): 3,
            (officer_id, "projects.AccessDenied"): 2,
            (officer_id, "projects.DataAccessed"): 1,
        }

        # --- the audit log, read as a compliance officer -------------------------------------
        audit_headers = bearer(officer, **{"X-Purpose": "legal_compliance"})

        async def logged(actor_id: str) -> list[dict[str, Any]]:
            response = await http.get(
                f"{consent}/audit/entries",
                params={"actor_id": actor_id, "producer": "projects", "limit": 500},
                headers=audit_headers,
            )
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        want = {e["_id"]: e for e in expected}
        deadline = time.monotonic() + DEADLINE_S
        while True:
            entries = [entry for actor in callers for entry in await logged(actor)]
            seen = {e["event_id"]: e for e in entries if e["event_id"] in want}
            if len(seen) == len(want):
                break
            assert time.monotonic() < deadline, f"only {len(seen)} of {len(want)} in the log"
            await asyncio.sleep(0.2)

        assert len([e for e in entries if e["event_id"] in want]) == len(want)  # once each
        for event_id, entry in seen.items():
            event = want[event_id]
            assert entry["actor_id"] == event["actor"]["id"]
            assert entry["actor_role"] == event["actor"]["role"]
            assert entry["action"] == event["action"]
            assert entry["purpose"] == event["purpose"]
            assert entry["categories"] == event["categories"]
            assert entry["resource"] == event["resource"]
        denials = [e for e in seen.values() if e["actor_id"] == outsider_id]
        assert {d["action"] for d in denials} == {"deny"}
        assert {d["resource"]["id"] for d in denials} == {
            "GET /projects/{project_id}",
            "GET /projects/{project_id}/messages",
            "GET /projects/{project_id}/files",
        }
        [officer_read] = [
            e for e in seen.values() if e["actor_id"] == officer_id and e["action"] == "read"
        ]
        assert officer_read["purpose"] == "legal_compliance"
        assert officer_read["categories"] == ["communication"]
        assert officer_read["resource"] == {
            "type": "resource",
            "id": f"project_messages:{project_id}",
        }
        assert text not in str(entries)  # ids, actions, purposes, categories: never contents

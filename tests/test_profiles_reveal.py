"""Issue 12, acceptance: a creator's sensitive fields follow their live consent, across services.

identity, consent and profiles run as their own processes (the session's `system`). The test
drives them over HTTP as the gateway would: an admin publishes a policy version at consent; a
creator registers at identity, puts and publishes a profile, and grants
`profile.sensitive_sharing` at consent; a client registered at identity then sees the
sensitive fields through profiles — profiles learnt the grant from consent's event on Kafka,
calling no other service. Each reveal is a `profiles.DataAccessed` naming the fields in
profiles' own store (read-only) and an entry of the audit log (read by a compliance officer
over consent's API). The creator withdraws; the client's reads then hide the fields.

The waits are generous deadlines for correctness, not measures of speed: the bound on how
long a withdrawal takes to stop reveals is stated in services/profiles/README.md.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient

from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.http import service_client
from tests import people
from tests.officers import new_password, publish_policy, staff_member

T = TypeVar("T")
WAIT_S = 60.0
SENSITIVE_FIELDS = ["phone", "email", "date_of_birth", "address", "measurements"]


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Poll `probe` until `done(result)`, failing after `WAIT_S` with the last result."""
    deadline = time.monotonic() + WAIT_S
    while True:
        result = await probe()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s; last {result!r}"
        await asyncio.sleep(0.1)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def test_a_client_sees_sensitive_fields_only_while_the_creator_consents(
    system: Any, infra: Infra
) -> None:
    identity, consent, profiles = (system.url(s) for s in ("identity", "consent", "profiles"))
    tag = secrets.token_hex(4)
    name = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))  # searchable
    phone = f"+33 6 {secrets.randbelow(90) + 10} {secrets.randbelow(90) + 10} 45 67"

    async with service_client(15.0) as http:

        async def register(role: str, **extra: Any) -> tuple[str, str]:
            email, password = f"{role}-{tag}@example.test", new_password()
            body = {
                "email": email,
                "password": password,
                "name": f"{role.title()} {tag}",
                "role": role,
                **extra,
            }
            return await people.register(http, identity, body)

        admin = await people.sign_in(http, identity, system.admin_email, system.admin_password)
        version = f"sys-{tag}"
        await publish_policy(
            http,
            consent,
            admin,
            version,
            "Sensitive profile fields are shared with clients only with consent.",
        )
        compliance = (await staff_member(http, identity, admin, "compliance")).token

        # --- a creator registers, puts and publishes a profile --------------------------------
        creator_id, creator = await register("creator")
        profile = {
            "display_name": f"Mia {name.title()}",
            "category": "model",
            "bio": "Editorial and runway model.",
            "skills": ["Runway"],
            "city": "Lyon",
            "languages": ["fr", "en"],
            "sensitive": {
                "phone": phone,
                "email": f"mia-{tag}@example.org",
                "date_of_birth": "1996-04-17",
                "address": "12 rue Victor Hugo, 69002 Lyon",
                "measurements": {"height_cm": 178},
            },
        }
        response = await http.put(f"{profiles}/profiles/me", headers=bearer(creator), json=profile)
        assert response.status_code == 200, response.text
        response = await http.post(f"{profiles}/profiles/me/publish", headers=bearer(creator))
        assert response.json()["published"] is True

        # --- a client sees the public part only ------------------------------------------------
        client_id, client = await register("client")

        async def read() -> dict[str, Any]:
            got = await http.get(f"{profiles}/profiles/{creator_id}", headers=bearer(client))
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            return body

        before = await read()
        assert before["display_name"] == f"Mia {name.title()}" and before["sensitive"] is None

        # --- the creator consents at consent; profiles reveals from consent's event ------------
        response = await http.put(
            f"{consent}/consents/me/profile.sensitive_sharing",
            headers=bearer(creator),
            json={"granted": True, "policy_version": version},
        )
        assert response.status_code == 200, response.text
        shown = await until(read, lambda b: b["sensitive"] is not None, "reveal after consent")
        assert shown["sensitive"]["phone"] == phone and shown["basis"] == "consent"
        assert shown["revealed"] == SENSITIVE_FIELDS

        # Search, meanwhile, returns the public part only and matches no sensitive value.
        found = await http.get(
            f"{profiles}/profiles", headers=bearer(client), params={"q": f"mia {name}"}
        )
        assert [c["user_id"] for c in found.json()["items"]] == [creator_id]
        assert phone not in found.text
        by_phone = await http.get(
            f"{profiles}/profiles", headers=bearer(client), params={"q": phone}
        )
        assert by_phone.json()["items"] == []

        # --- the reveal in profiles' store (field names) and in the audit log ------------------
        mongo: Any = AsyncMongoClient(infra.mongo_uri)
        try:
            store = mongo[system.database("profiles")]["events"]
            reveals = await store.find(
                {
                    "event_type": "profiles.DataAccessed",
                    "subject_id": creator_id,
                    "categories": ["sensitive"],
                }
            ).to_list(None)
        finally:
            await mongo.close()
        assert reveals, "no access event for the reveal"
        assert {r["actor"]["id"] for r in reveals} == {client_id}
        assert all(r["data"]["fields"] == SENSITIVE_FIELDS for r in reveals)
        assert phone not in str(reveals)

        async def logged() -> list[dict[str, Any]]:
            got = await http.get(
                f"{consent}/audit/entries",
                headers=bearer(compliance, **{"X-Purpose": "legal_compliance"}),
                params={"subject_id": creator_id, "event_type": "profiles.DataAccessed"},
            )
            assert got.status_code == 200, got.text
            items: list[dict[str, Any]] = got.json()["items"]
            return items

        entries = await until(
            logged,
            lambda items: reveals[0]["_id"] in {e["event_id"] for e in items},
            "the reveal in the audit log",
        )
        entry = next(e for e in entries if e["event_id"] == reveals[0]["_id"])
        assert entry["actor_id"] == client_id and entry["categories"] == ["sensitive"]

        # --- the creator withdraws: the client's reads hide the fields -------------------------
        response = await http.put(
            f"{consent}/consents/me/profile.sensitive_sharing",
            headers=bearer(creator),
            json={"granted": False, "policy_version": version},
        )
        assert response.status_code == 200, response.text
        hidden = await until(read, lambda b: b["sensitive"] is None, "hidden after withdrawal")
        assert hidden["revealed"] == [] and hidden["basis"] is None
        assert (await read())["sensitive"] is None  # and stays hidden

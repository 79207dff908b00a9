"""API tests of the reveal rule, learnt from other services' events over the real broker.

Consent's and projects' events are published to this app's topics as their producers publish
them (`conftest.consent_decision`, `project_created`, `membership`); the app's inbox consumes
them. A grant is awaited from the outside (reads until the fields show); a withdrawal or a
removal is awaited until the inbox committed its effect (its processed marker), and then the
very next read must hide the fields. Identity's `AccountClosed` hides the profile and refuses
the account's tokens; an erasure command takes the creator off search before its answer is
stored.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.runtime.erasure import answer_id
from mmgen.runtime.testing import assert_problem, erase_command, eventually, publish_command

from ..conftest import new_id
from .conftest import Api, consent_decision, membership, profile_body, project_created

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALL_SENSITIVE = ["phone", "email", "date_of_birth", "address", "measurements"]
PX = "project_execution"


def word() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=12))


async def shown(client, creator: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/profiles/{creator}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def revealed(body: dict[str, Any]) -> bool:
    return body["sensitive"] is not None


def keys_and_values(document: Any) -> tuple[set[str], list[Any]]:
    """Every key and every scalar value anywhere in a JSON document.

    A response is checked value by value: a bare substring check would find a short number such
    as a height inside an id or a timestamp.
    """
    keys: set[str] = set()
    values: list[Any] = []
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            keys.update(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        else:
            values.append(node)
    return keys, values


async def sensitive_reads(api: Api, creator: str, after: int = 0) -> list[dict[str, Any]]:
    accessed = await api.events(after, event_type="profiles.DataAccessed", subject_id=creator)
    return [e for e in accessed if e["categories"] == ["sensitive"]]


async def test_consent_granted_reveals_to_clients_and_each_reveal_names_the_fields(
    api: Api, client, tokens
) -> None:
    creator, _ = await api.creator()
    client_id, me = tokens.headers("client")
    before = await shown(client, creator, me)
    assert before["sensitive"] is None and before["revealed"] == [] and before["basis"] is None

    await api.publish(consent_decision(creator, granted=True, version=1))
    body = await eventually(lambda: shown(client, creator, me), until=revealed, timeout=30)
    assert body["basis"] == "consent" and body["revealed"] == ALL_SENSITIVE
    assert body["sensitive"]["phone"] == "+33 6 12 34 56 78"
    assert body["sensitive"]["measurements"] == {
        "height_cm": 178,
        "chest_cm": None,
        "waist_cm": 61,
        "hips_cm": None,
        "shoe_size_eu": None,
        "clothing_size": None,
    }

    reads = await sensitive_reads(api, creator)
    assert reads, "a reveal left no access event"
    for event in reads:
        assert event["actor"] == {"id": client_id, "role": "client"}
        assert event["data"]["fields"] == ALL_SENSITIVE
        assert event["data"]["route"] == "/profiles/{user_id}"
        assert event["action"] == "read" and event["purpose"] is None
        assert "+33" not in str(event) and event["pii"] is None

    # Consent opens the fields to clients only.
    for role in ("creator", "admin"):
        _, other = tokens.headers(role, purpose="support")
        assert not revealed(await shown(client, creator, other))
    assert_problem(await client.get(f"/profiles/{creator}"), 401)
    # Another purpose's consent opens nothing.
    other, _ = await api.creator()
    await api.deliver(consent_decision(other, granted=True, version=1, purpose="marketing.email"))
    assert not revealed(await shown(client, other, me))


async def test_a_withdrawal_hides_the_fields_from_the_next_read_after_it_is_consumed(
    api: Api, client, tokens
) -> None:
    creator, _ = await api.creator()
    _, me = tokens.headers("client")
    await api.publish(consent_decision(creator, granted=True, version=1))
    await eventually(lambda: shown(client, creator, me), until=revealed, timeout=30)

    await api.deliver(consent_decision(creator, granted=False, version=2))
    mark = await api.mark()
    after = await shown(client, creator, me)
    assert after["sensitive"] is None and after["revealed"] == []
    assert await sensitive_reads(api, creator, mark) == []
    # A late grant older than the withdrawal does not bring them back.
    await api.deliver(consent_decision(creator, granted=True, version=1))
    assert not revealed(await shown(client, creator, me))


async def test_members_of_a_shared_project_see_the_fields_for_project_execution_only(
    api: Api, client, tokens
) -> None:
    creator, _ = await api.creator()
    owner_id, _ = tokens.headers("client")
    staff_id, _ = tokens.headers("staff")
    project = new_id()
    await api.publish(
        project_created(project, owner_id),
        membership(project, creator, added=True, version=2, by=owner_id),
        membership(project, staff_id, added=True, version=3, role="staff", by=owner_id),
    )
    _, owner_px = tokens.headers("client", subject=owner_id, purpose=PX)
    body = await eventually(lambda: shown(client, creator, owner_px), until=revealed, timeout=30)
    assert body["basis"] == "shared_project" and body["revealed"] == ALL_SENSITIVE
    (read,) = await sensitive_reads(api, creator)
    assert read["purpose"] == PX and read["actor"]["id"] == owner_id

    _, staff_px = tokens.headers("staff", subject=staff_id, purpose=PX)
    assert (await shown(client, creator, staff_px))["basis"] == "shared_project"
    for headers in (
        tokens.headers("client", subject=owner_id)[1],
        tokens.headers("client", subject=owner_id, purpose="support")[1],
        tokens.headers("staff", subject=staff_id, purpose="support")[1],
        tokens.headers("client", purpose=PX)[1],  # shares no project with the creator
    ):
        assert not revealed(await shown(client, creator, headers))

    await api.deliver(membership(project, creator, added=False, version=4, by=owner_id))
    assert not revealed(await shown(client, creator, owner_px))


async def test_search_never_returns_or_matches_a_sensitive_value(api: Api, client, tokens) -> None:
    street, name = word(), word()
    secrets = {
        "phone": f"+33 6 {random.randint(10, 99)} {random.randint(10, 99)} 45 67",
        "email": f"{name}.{street}@example.org",
        "date_of_birth": "1994-02-03",
        "address": f"rue {street.title()} Lyon",
        "measurements": {"height_cm": 181},
    }
    # Every word of the address is in the public part too, and the name is the email's.
    creator, own = await api.creator(
        display_name=f"Ada {name.title()}",
        city="Lyon",
        bio=f"Studio in the rue {street.title()} quarter.",
        sensitive=secrets,
    )
    await api.deliver(consent_decision(creator, granted=True, version=1))  # reveals on
    _, me = tokens.headers("client")
    assert revealed(await shown(client, creator, me))

    async def search(**params: str) -> Any:
        response = await client.get("/profiles", headers=me, params=params)
        assert response.status_code == 200, response.text
        return response

    found = await search(q=name)
    assert [c["user_id"] for c in found.json()["items"]] == [creator]  # search works
    for value in (secrets["phone"], secrets["email"], secrets["address"], "1994-02-03"):
        assert (await search(q=value)).json() == {"items": [], "next_cursor": None}, value
    assert (await search(city=secrets["address"])).json()["items"] == []
    listed = await search(city="Lyon", q=name)
    assert [c["user_id"] for c in listed.json()["items"]] == [creator]
    for response in (found, listed):
        shown_keys, shown_values = keys_and_values(response.json())
        assert not shown_keys & {"sensitive", "measurements", "height_cm", "date_of_birth"}
        assert 181 not in shown_values  # the height, as a number
        for value in (secrets["phone"], secrets["email"], "1994-02-03"):
            assert not any(value in str(v) for v in shown_values), value

    # Writing a sensitive value into the public part is refused: it would be returned to all.
    body = profile_body(bio=f"Write to {secrets['email']}", sensitive=secrets)
    problem = assert_problem(await client.put("/profiles/me", headers=own, json=body), 422)
    assert [e["field"] for e in problem["errors"]] == ["bio"]
    assert secrets["email"] not in str(problem)
    assert (await search(q=name)).json()["items"][0]["bio_excerpt"] == (
        f"Studio in the rue {street.title()} quarter."
    )


async def test_a_closed_account_is_hidden_and_its_tokens_refused(api: Api, client, tokens) -> None:
    creator, own = await api.creator(display_name=f"Closing {word().title()}")
    _, me = tokens.headers("client")
    await shown(client, creator, me)
    closed = Envelope(
        event_type="identity.AccountClosed",
        schema_version=1,
        producer="identity",
        producer_seq=1,
        stream_id=f"user-{creator}",
        stream_version=3,
        subject_id=creator,
        actor=Actor(id=creator, role="creator"),
        action="delete",
        resource=Resource(type="user", id=creator),
        data={"closed_by": "self"},
        categories=("account",),
    )
    await api.publish(closed)

    async def status() -> int:
        return (await client.get(f"/profiles/{creator}", headers=me)).status_code

    await eventually(status, until=lambda code: code == 404, timeout=30)
    assert_problem(await client.get("/profiles/me", headers=own), 401)


async def test_an_erased_creator_disappears_from_search_at_once(api: Api, client, tokens) -> None:
    name = word()
    creator, own = await api.creator(display_name=f"Erin {name.title()}")
    _, me = tokens.headers("client")
    hits = (await client.get("/profiles", headers=me, params={"q": name})).json()["items"]
    assert [c["user_id"] for c in hits] == [creator]
    _, retention = tokens.headers("service", subject="retention")
    export = await client.get(f"/internal/subjects/{creator}/export", headers=retention)
    assert export.json()["records"]["profile"]["sensitive"]["phone"] == "+33 6 12 34 56 78"

    command = erase_command(creator)
    await publish_command(api.settings, command)

    async def answered() -> Any:
        return await api.service.repository.store.get(answer_id(command, "profiles"))

    answer = await eventually(answered, until=lambda a: a is not None, timeout=30)
    assert answer.event_type == "profiles.SubjectErased" and answer.data["keys_shredded"] == 1
    # The postings went in the same transaction as the answer: gone by the time it is stored.
    hits = (await client.get("/profiles", headers=me, params={"q": name})).json()["items"]
    assert hits == []
    assert_problem(await client.get(f"/profiles/{creator}", headers=me), 404)
    assert_problem(await client.get("/profiles/me", headers=own), 410, "profile-erased")
    footprint = await client.get(f"/internal/subjects/{creator}/footprint", headers=retention)
    assert footprint.json()["key_erased"] is True
    assert footprint.json()["readable_personal_fields"] == 0

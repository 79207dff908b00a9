"""API tests: a creator's own profile, who may call what, bad input, unpublished profiles,
search parameters and pages — each refusal a problem+json and an audited `AccessDenied`."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from mmgen.runtime.testing import assert_problem

from ..conftest import new_id
from .conftest import Api, profile_body

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHONE = "+33 6 12 34 56 78"


def tag() -> str:
    """A word no other test uses (letters only: every search token keeps it whole)."""
    return "".join(random.choices(string.ascii_lowercase, k=12))


async def denials(api: Api, after: int, **query: Any) -> list[dict[str, Any]]:
    return await api.events(after, event_type="profiles.AccessDenied", **query)


async def test_a_creator_writes_reads_and_publishes_their_profile(api: Api, client, tokens) -> None:
    creator, me = tokens.headers("creator")
    body = profile_body()
    response = await client.put("/profiles/me", headers=me, json=body)
    assert response.status_code == 200, response.text
    own = response.json()
    assert own["user_id"] == creator and own["published"] is False
    assert own["sensitive"]["phone"] == PHONE
    assert own["experience"][0]["from"] == "2021-03-01"
    assert (await client.get("/profiles/me", headers=me)).json() == own

    stored = await api.events(subject_id=creator)
    assert [e["event_type"] for e in stored] == [
        "profiles.ProfileCreated",
        "profiles.SensitiveDetailsSet",
    ]
    assert stored[1]["data"] == {"fields_set": 5} and stored[1]["categories"] == ["sensitive"]
    assert all(e["pii"] is not None for e in stored)
    assert PHONE not in str(stored) and "Mia Laurent" not in str(stored)

    again = await client.put("/profiles/me", headers=me, json=body)
    assert again.status_code == 200 and again.json()["version"] == own["version"]
    assert len(await api.events(subject_id=creator)) == 2  # nothing changed, nothing recorded

    published = await client.post("/profiles/me/publish", headers=me)
    assert published.json() == {"user_id": creator, "published": True, "changed": True}
    repeated = await client.post("/profiles/me/publish", headers=me)
    assert repeated.json()["changed"] is False
    unpublished = await client.post("/profiles/me/unpublish", headers=me)
    assert unpublished.json() == {"user_id": creator, "published": False, "changed": True}
    assert [e["event_type"] for e in await api.events(subject_id=creator)][2:] == [
        "profiles.ProfilePublished",
        "profiles.ProfileUnpublished",
    ]


async def test_only_creators_have_a_profile_and_every_refusal_is_recorded(
    api: Api, client, tokens
) -> None:
    before = await api.mark()
    client_id, as_client = tokens.headers("client")
    refused = await client.put("/profiles/me", headers=as_client, json=profile_body())
    assert_problem(refused, 403, "role-not-allowed")
    for method, path in (("GET", "/profiles/me"), ("POST", "/profiles/me/publish")):
        assert_problem(await client.request(method, path, headers=as_client), 403)
    assert_problem(await client.get("/profiles/me"), 401)
    assert_problem(await client.get("/profiles"), 401)
    _, service = tokens.headers("service", subject="retention")
    assert_problem(await client.get(f"/profiles/{new_id()}", headers=service), 403)
    assert_problem(await client.get("/profiles", headers=service), 403)

    recorded = await denials(api, before)
    assert len(recorded) == 7
    mine = [d for d in recorded if d["actor"] and d["actor"]["id"] == client_id]
    assert [(d["data"]["route"], d["data"]["status"]) for d in mine] == [
        ("/profiles/me", 403),
        ("/profiles/me", 403),
        ("/profiles/me/publish", 403),
    ]
    assert {d["data"]["code"] for d in mine} == {"role-not-allowed"}
    assert [e for e in await api.events(before) if e["event_type"] != "profiles.AccessDenied"] == []


async def test_an_invalid_profile_is_refused_with_its_fields_and_nothing_is_stored(
    api: Api, client, tokens
) -> None:
    creator, me = tokens.headers("creator")
    body = profile_body()
    body.pop("display_name")
    body["portfolio"] = [{"title": "Leak", "url": "ftp://secret-host.example/archive"}]
    body["sensitive"]["phone"] = "call me maybe"
    problem = assert_problem(await client.put("/profiles/me", headers=me, json=body), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {"display_name", "sensitive.phone"} <= fields
    assert any(f.startswith("portfolio.0") for f in fields)
    assert "call me maybe" not in str(problem) and "secret-host" not in str(problem)

    future = profile_body(
        experience=[{"title": "Runway", "organisation": "Maison", "from": "2020-01-01"}]
    )
    future["experience"][0]["from"] = "2999-01-01"
    problem = assert_problem(
        await client.put("/profiles/me", headers=me, json=future), 422, "profile-invalid"
    )
    assert [e["field"] for e in problem["errors"]] == ["experience.0.from"]

    unknown = {**profile_body(), "verified": True}
    assert_problem(await client.put("/profiles/me", headers=me, json=unknown), 422)
    assert_problem(
        await client.put(
            "/profiles/me", headers={**me, "Content-Type": "application/json"}, content=b"{not json"
        ),
        400,
        "malformed-json",
    )
    assert_problem(await client.post("/profiles/me/publish", headers=me), 404, "profile-not-found")
    assert await api.events(subject_id=creator) == []


async def test_unpublished_profiles_are_hidden_from_other_clients_and_creators(
    api: Api, client, tokens
) -> None:
    creator, owner = await api.creator(publish=False)
    before = await api.mark()
    missing = assert_problem(await client.get(f"/profiles/{new_id()}", headers=owner), 404)
    viewers = [tokens.headers("client"), tokens.headers("creator")]
    viewers.append(tokens.headers("client", purpose="project_execution"))
    for _, headers in viewers:
        hidden = assert_problem(await client.get(f"/profiles/{creator}", headers=headers), 404)
        assert {k: hidden[k] for k in ("type", "title", "detail")} == {
            k: missing[k] for k in ("type", "title", "detail")
        }
    admin_id, admin = tokens.headers("admin", purpose="support")
    assert_problem(await client.get(f"/profiles/{creator}", headers=admin), 404)

    recorded = await denials(api, before)
    assert len(recorded) == 4  # the hidden profile, once per caller; nothing for the missing one
    assert {d["subject_id"] for d in recorded} == {creator}
    assert {(d["data"]["code"], d["data"]["status"]) for d in recorded} == {("profile-hidden", 404)}
    assert {d["data"]["route"] for d in recorded} == {"/profiles/{user_id}"}
    callers = [v[0] for v in viewers] + [admin_id]
    assert sorted(d["actor"]["id"] for d in recorded) == sorted(callers)

    own = await client.get(f"/profiles/{creator}", headers=owner)
    assert own.status_code == 200
    assert own.json()["sensitive"]["phone"] == PHONE and own.json()["basis"] == "owner"
    assert await api.events(before, event_type="profiles.DataAccessed") == []


async def test_staff_read_unpublished_profiles_with_a_purpose_and_are_audited(
    api: Api, client, tokens
) -> None:
    creator, _ = await api.creator(publish=False)
    before = await api.mark()
    staff_id, staff = tokens.headers("staff")
    assert_problem(await client.get(f"/profiles/{creator}", headers=staff), 403, "purpose-required")
    bad = {**staff, "X-Purpose": "curiosity"}
    assert_problem(await client.get(f"/profiles/{creator}", headers=bad), 403, "purpose-unknown")
    read = await client.get(f"/profiles/{creator}", headers={**staff, "X-Purpose": "support"})
    assert read.status_code == 200, read.text
    assert read.json()["sensitive"] is None and read.json()["revealed"] == []
    assert read.json()["display_name"] == "Mia Laurent"

    (denied_1, denied_2) = await denials(api, before)
    assert denied_1["data"]["code"] == "purpose-required" and denied_1["subject_id"] == creator
    assert denied_2["data"]["code"] == "purpose-unknown"
    (access,) = await api.events(before, event_type="profiles.DataAccessed")
    assert access["actor"] == {"id": staff_id, "role": "staff"}
    assert access["purpose"] == "support" and access["subject_id"] == creator
    assert access["categories"] == ["portfolio"]
    assert "display_name" in access["data"]["fields"]
    assert not set(access["data"]["fields"]) & {"phone", "email", "address"}


async def test_search_filters_and_pages_and_refuses_what_it_cannot_do(
    api: Api, client, tokens
) -> None:
    skill = tag()
    made = [(await api.creator(skills=[skill.title(), "Runway"]))[0] for _ in range(3)]
    await api.creator(publish=False, skills=[skill])  # not listed
    _, me = tokens.headers("client")
    first = await client.get("/profiles", headers=me, params={"skill": skill, "limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await client.get(
        "/profiles", headers=me, params={"skill": skill, "limit": 2, "cursor": page["next_cursor"]}
    )
    assert rest.json()["next_cursor"] is None
    found = [c["user_id"] for c in page["items"] + rest.json()["items"]]
    assert found == made[::-1]  # most recently listed first
    card = page["items"][0]
    assert card["skills"] == [skill.title(), "Runway"] and "sensitive" not in card
    assert PHONE not in first.text + rest.text

    for params, status, field in (
        ({"sort": "date_of_birth"}, 422, "sort"),
        ({"phone": PHONE}, 422, "phone"),
        ({"limit": 51}, 422, "limit"),
        ({"limit": 0}, 422, "limit"),
        ({"category": "influencer"}, 422, "category"),
        ({"q": " ".join(tag() for _ in range(9))}, 422, "q"),
    ):
        problem = assert_problem(await client.get("/profiles", headers=me, params=params), status)
        assert field in {e["field"] for e in problem["errors"]}, problem
    assert_problem(
        await client.get("/profiles", headers=me, params={"cursor": "not-a-cursor"}),
        400,
        "invalid-cursor",
    )
    other = {"skill": skill, "city": "Lyon", "cursor": page["next_cursor"]}
    assert_problem(await client.get("/profiles", headers=me, params=other), 400, "invalid-cursor")


async def test_staff_searches_are_audited_and_client_searches_are_not(
    api: Api, client, tokens
) -> None:
    city = tag()
    await api.creator(city=city.title())
    before = await api.mark()
    _, me = tokens.headers("client")
    listed = await client.get("/profiles", headers=me, params={"city": city})
    assert len(listed.json()["items"]) == 1
    assert await api.events(before, event_type="profiles.DataAccessed") == []
    staff_id, staff = tokens.headers("compliance", purpose="legal_compliance")
    listed = await client.get("/profiles", headers=staff, params={"city": city})
    assert len(listed.json()["items"]) == 1
    (access,) = await api.events(before, event_type="profiles.DataAccessed")
    assert access["actor"]["id"] == staff_id and access["purpose"] == "legal_compliance"
    assert access["data"]["records"] == 1 and access["data"]["route"] == "/profiles"

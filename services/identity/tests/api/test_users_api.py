"""`/users/*` and `/admin/users`: own account, corrections (one event each), closing, staff reads
with a declared purpose (audited), audited refusals, admin-created accounts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmgen.runtime.testing import assert_problem, erase_command
from services.identity.tests.identity_kit import Running, passphrase, unique_email

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_get_me(svc: Running) -> None:
    user = await svc.user_with_token(phone="+44 20 7946 0958")
    me = await svc.client.get("/users/me", headers=user["auth"])
    assert me.status_code == 200
    assert me.json() == {
        "user_id": user["user_id"],
        "role": "client",
        "status": "active",
        "email": user["email"],
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0958",
        "business": None,
        "email_verified": False,
        "mfa_enabled": False,
    }


async def test_me_requires_a_token(svc: Running) -> None:
    assert_problem(await svc.client.get("/users/me"), 401, "unauthenticated")
    assert_problem(await svc.client.patch("/users/me", json={"name": "x"}), 401, "unauthenticated")
    assert_problem(await svc.client.delete("/users/me"), 401, "unauthenticated")


async def denials_at(svc: Running, path: str) -> list[dict[str, Any]]:
    return [
        d
        for d in await svc.stored_events(event_type="identity.AccessDenied")
        if d["data"]["route"] == path
    ]


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"name": "Mallory"}), ("DELETE", None)])
async def test_a_service_token_cannot_correct_or_close(
    svc: Running, method: str, body: dict[str, Any] | None
) -> None:
    """A service token is no account: `/users/me` refuses it (403), whatever the verb."""
    await svc.user_with_token()  # someone whose account must stay as it is
    service = await svc.service_auth("retention")
    before, denied = await svc.stored_counts(), len(await denials_at(svc, "/users/me"))
    response = await svc.client.request(method, "/users/me", headers=service, json=body)
    assert_problem(response, 403, "role-not-allowed")
    assert await svc.stored_counts() == before
    denials = await denials_at(svc, "/users/me")
    assert len(denials) == denied + 1
    assert denials[-1]["actor"] == {"id": "retention", "role": "service"}
    assert denials[-1]["data"]["method"] == method and denials[-1]["subject_id"] is None


async def test_each_correction_is_its_own_event(svc: Running) -> None:
    user = await svc.user_with_token()
    response = await svc.client.patch(
        "/users/me",
        headers=user["auth"],
        json={
            "name": "Augusta Ada King",
            "phone": "+44 1632 960123",
            "business": {"company_name": "Analytical Engines Ltd", "vat_number": "GB123"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Augusta Ada King" and body["phone"] == "+44 1632 960123"
    assert body["business"]["company_name"] == "Analytical Engines Ltd"
    types = await svc.event_types(subject_id=user["user_id"])
    assert types[0] == "identity.UserRegistered"
    assert sorted(types[1:]) == [
        "identity.BusinessCorrected",
        "identity.NameCorrected",
        "identity.PhoneCorrected",
    ]
    # Same values again: nothing to record.
    again = await svc.client.patch(
        "/users/me", headers=user["auth"], json={"name": "Augusta Ada King"}
    )
    assert again.status_code == 200
    assert len(await svc.event_types(subject_id=user["user_id"])) == 4
    # Removing the phone is a correction too.
    removed = await svc.client.patch("/users/me", headers=user["auth"], json={"phone": None})
    assert removed.json()["phone"] is None
    assert (await svc.event_types(subject_id=user["user_id"]))[-1] == "identity.PhoneCorrected"


async def test_email_change_rechecks_uniqueness_and_frees_the_old_one(svc: Running) -> None:
    user = await svc.user_with_token()
    other = await svc.register()
    password = {"current_password": user["password"]}
    taken = await svc.client.patch(
        "/users/me", headers=user["auth"], json={"email": other["email"].upper(), **password}
    )
    assert_problem(taken, 409, "email-taken")
    assert len(await svc.event_types(subject_id=user["user_id"])) == 1

    new_email = unique_email("moved")
    for wrong in ({}, {"current_password": "not the password at all"}):
        refused = await svc.client.patch(
            "/users/me", headers=user["auth"], json={"email": new_email, **wrong}
        )
        assert_problem(refused, 403, "reauthentication-failed")
    assert len(await svc.event_types(subject_id=user["user_id"])) == 1
    moved = await svc.client.patch(
        "/users/me", headers=user["auth"], json={"email": new_email, **password}
    )
    assert moved.status_code == 200 and moved.json()["email"] == new_email
    assert "identity.EmailCorrected" in await svc.event_types(subject_id=user["user_id"])
    await svc.login(new_email, user["password"])  # the new email signs in
    old = await svc.client.post(
        "/auth/token", json={"email": user["email"], "password": user["password"]}
    )
    assert_problem(old, 401, "invalid-credentials")
    # The old address is free for someone else.
    await svc.register(email=user["email"])


def pause_after_loading(
    monkeypatch: pytest.MonkeyPatch, svc: Running, user_id: str, meanwhile: Any, skip: int = 0
) -> None:
    """Run `meanwhile()` after a request has loaded the account and before it writes (after
    the first `skip` loads: re-authentication loads the account before the correction does)."""
    repository = svc.identity.kernel.repository
    load = repository.get
    loads = 0

    async def get(cls: Any, stream_id: str) -> Any:
        nonlocal loads
        loaded = await load(cls, stream_id)
        if stream_id == user_id:
            loads += 1
            if loads > skip:
                await meanwhile()
        return loaded

    monkeypatch.setattr(repository, "get", get)


async def test_racing_corrections_one_wins_the_other_is_a_409(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await svc.user_with_token()
    both_loaded = asyncio.Barrier(2)  # both requests read version 1 before either writes

    async def wait_for_the_other() -> None:
        await asyncio.wait_for(both_loaded.wait(), timeout=10)

    pause_after_loading(monkeypatch, svc, user["user_id"], wait_for_the_other)
    bodies = [
        {"email": unique_email("first"), "name": "First Name"},
        {"email": unique_email("second"), "name": "Second Name"},
    ]
    bodies = [{**body, "current_password": user["password"]} for body in bodies]
    responses = await asyncio.gather(
        *(svc.client.patch("/users/me", headers=user["auth"], json=body) for body in bodies)
    )
    monkeypatch.undo()
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    won, lost = (0, 1) if responses[0].status_code == 200 else (1, 0)
    assert_problem(responses[lost], 409, "concurrent-update")
    # Only the winner's corrections are stored and shown; the loser's new email is free again.
    assert await svc.event_types(subject_id=user["user_id"]) == [
        "identity.UserRegistered",
        "identity.EmailCorrected",
        "identity.NameCorrected",
    ]
    me = (await svc.client.get("/users/me", headers=user["auth"])).json()
    assert (me["email"], me["name"]) == (bodies[won]["email"], bodies[won]["name"])
    await svc.register(email=bodies[lost]["email"])


async def test_a_correction_racing_an_erasure_is_a_410(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await svc.user_with_token()

    async def erased_meanwhile() -> None:
        await svc.identity.erasure_commands.handle(erase_command(user["user_id"]))

    pause_after_loading(monkeypatch, svc, user["user_id"], erased_meanwhile, skip=1)
    new_email = unique_email("late")
    response = await svc.client.patch(
        "/users/me",
        headers=user["auth"],
        json={"email": new_email, "name": "Too Late", "current_password": user["password"]},
    )
    monkeypatch.undo()
    assert_problem(response, 410, "subject-erased")
    # Nothing was written under the shredded key, and the new email was not kept reserved.
    assert await svc.event_types(subject_id=user["user_id"]) == [
        "identity.UserRegistered",
        "identity.SubjectErased",
    ]
    await svc.register(email=new_email)


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"name": "Eve", "role": "admin"},
        {"status": "active"},
        {"user_id": "00000000-0000-0000-0000-000000000001"},
        {"email": None},
        {"name": None},
        {"email": "not an email"},
        {"phone": "phone"},
    ],
)
async def test_mass_assignment_and_invalid_corrections(svc: Running, body: dict[str, Any]) -> None:
    user = await svc.user_with_token()
    response = await svc.client.patch("/users/me", headers=user["auth"], json=body)
    assert_problem(response, 422)
    assert await svc.event_types(subject_id=user["user_id"]) == ["identity.UserRegistered"]
    me = (await svc.client.get("/users/me", headers=user["auth"])).json()
    assert me["role"] == "client" and me["name"] == "Ada Lovelace"


async def test_closing_the_account(svc: Running) -> None:
    user = await svc.user_with_token()
    for wrong in ({}, {"current_password": "not the password at all"}):
        refused = await svc.client.request(
            "DELETE", "/users/me", headers=user["auth"], json=wrong or None
        )
        assert refused.status_code in (403, 422), refused.text
    assert (await svc.client.get("/users/me", headers=user["auth"])).status_code == 200
    closed = await svc.client.request(
        "DELETE", "/users/me", headers=user["auth"], json={"current_password": user["password"]}
    )
    assert closed.status_code == 204
    # The same token is refused at once, as is every way back in.
    assert_problem(await svc.client.get("/users/me", headers=user["auth"]), 401, "invalid-token")
    assert_problem(
        await svc.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]}),
        401,
        "invalid-refresh-token",
    )
    login = await svc.client.post(
        "/auth/token", json={"email": user["email"], "password": user["password"]}
    )
    assert_problem(login, 401, "invalid-credentials")
    docs = await svc.stored_events(subject_id=user["user_id"], event_type="identity.AccountClosed")
    assert len(docs) == 1 and docs[0]["action"] == "delete" and docs[0]["pii"] is None


# --- staff reads ----------------------------------------------------------------------------------


async def test_staff_read_with_purpose_is_an_access_event(svc: Running) -> None:
    target = await svc.register(phone="+1 202 555 0143")
    staff = await svc.staff("staff")
    response = await svc.client.get(
        f"/users/{target['user_id']}", headers={**staff["auth"], "X-Purpose": "support"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == target["email"]
    reads = await svc.stored_events(subject_id=target["user_id"], event_type="identity.UserRead")
    assert len(reads) == 1
    read = reads[0]
    assert read["action"] == "read" and read["purpose"] == "support"
    assert read["actor"] == {"id": staff["user_id"], "role": "staff"}
    assert read["resource"] == {"type": "user", "id": target["user_id"]}
    assert sorted(read["data"]["fields"]) == ["email", "name", "phone"]
    assert read["pii"] is None

    compliance = await svc.staff("compliance")
    ok = await svc.client.get(
        f"/users/{target['user_id']}",
        headers={**compliance["auth"], "X-Purpose": "legal_compliance"},
    )
    assert ok.status_code == 200


async def test_staff_read_refusals_are_audited(svc: Running) -> None:
    target = await svc.register()
    staff = await svc.staff("staff")
    client = await svc.user_with_token()
    admin = await svc.staff("admin")
    url = f"/users/{target['user_id']}"
    cases = [
        ({**staff["auth"]}, 403, "purpose-required"),
        ({**staff["auth"], "X-Purpose": "curiosity"}, 403, "purpose-unknown"),
        ({**client["auth"], "X-Purpose": "support"}, 403, "role-not-allowed"),
        ({**admin["auth"], "X-Purpose": "support"}, 403, "role-not-allowed"),
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Bearer nonsense"}, 401, "invalid-token"),
    ]
    for headers, status, slug in cases:
        assert_problem(await svc.client.get(url, headers=headers), status, slug)
    denials = await svc.stored_events(
        subject_id=target["user_id"], event_type="identity.AccessDenied"
    )
    assert sorted(d["data"]["code"] for d in denials) == sorted(slug for *_, slug in cases)
    for denial in denials:
        assert denial["action"] == "deny"
        assert denial["data"]["route"] == "/users/{user_id}"
        assert denial["subject_id"] == target["user_id"]  # the user it was about
    by_staff = [d for d in denials if d["actor"] and d["actor"]["id"] == staff["user_id"]]
    assert len(by_staff) == 2
    assert not await svc.stored_events(subject_id=target["user_id"], event_type="identity.UserRead")


async def test_a_purpose_an_account_read_does_not_accept_is_refused_and_audited(
    svc: Running,
) -> None:
    target = await svc.register()
    staff = await svc.staff("staff")
    url = f"/users/{target['user_id']}"
    refused = await svc.client.get(url, headers={**staff["auth"], "X-Purpose": "project_execution"})
    body = assert_problem(refused, 403, "purpose-not-allowed")
    assert body["allowed_purposes"] == [
        "legal_compliance",
        "payment_processing",
        "security",
        "support",
    ]
    [denial] = await svc.stored_events(
        subject_id=target["user_id"], event_type="identity.AccessDenied"
    )
    assert denial["data"]["code"] == "purpose-not-allowed"
    assert denial["purpose"] == "project_execution"  # what was declared, for the audit
    assert denial["actor"] == {"id": staff["user_id"], "role": "staff"}
    assert not await svc.stored_events(subject_id=target["user_id"], event_type="identity.UserRead")
    # The route's purposes are in its OpenAPI description, for the gateway.
    spec = (await svc.client.get("/openapi.json")).json()
    parameters = spec["paths"]["/users/{user_id}"]["get"]["parameters"]
    [purpose] = [p for p in parameters if p["name"] == "X-Purpose"]
    assert purpose["schema"]["enum"] == [
        "support",
        "security",
        "legal_compliance",
        "payment_processing",
    ]


async def test_staff_read_of_unknown_user(svc: Running) -> None:
    staff = await svc.staff("staff")
    headers = {**staff["auth"], "X-Purpose": "support"}
    missing = "7d1e3c2b-0f4a-4b8e-9c6d-5a4b3c2d1e0f"
    assert_problem(
        await svc.client.get(f"/users/{missing}", headers=headers), 404, "user-not-found"
    )
    assert_problem(await svc.client.get("/users/not-a-uuid", headers=headers), 404)


# --- admin-created accounts -------------------------------------------------------------------


async def test_admin_creates_staff_compliance_and_admin(svc: Running) -> None:
    admin = await svc.staff("admin")
    for role in ("staff", "compliance", "admin"):
        email, password = unique_email(role), passphrase()
        response = await svc.client.post(
            "/admin/users",
            headers=admin["auth"],
            json={"email": email, "password": password, "name": f"New {role}", "role": role},
        )
        assert response.status_code == 201, response.text
        created = response.json()["user_id"]
        second = await svc.enrol_totp(created, password)  # needed before any read
        tokens = await svc.login(email, password, totp=second["totp"].next())
        me = await svc.client.get(
            "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.json()["role"] == role and me.json()["email_verified"] is True
        docs = await svc.stored_events(subject_id=response.json()["user_id"])
        assert docs[0]["data"]["registered_by"] == "admin"
        assert docs[0]["actor"] == {"id": admin["user_id"], "role": "admin"}


@pytest.mark.parametrize("creator_role", ["client", "staff", "compliance", "service"])
async def test_only_admins_create_accounts(svc: Running, creator_role: str) -> None:
    if creator_role == "service":
        auth = await svc.service_auth("admin-cli")
    elif creator_role == "client":
        auth = (await svc.user_with_token())["auth"]
    else:
        auth = (await svc.staff(creator_role))["auth"]
    before = await svc.stored_counts()
    body = staff_body(role="admin")
    assert_problem(
        await svc.client.post("/admin/users", headers=auth, json=body), 403, "role-not-allowed"
    )
    assert await svc.stored_counts() == before


#: A `staff_body` change that leaves the field out.
MISSING = object()


def staff_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": unique_email("staff"),
        "password": passphrase(),
        "name": "Grace Hopper",
        "role": "staff",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not MISSING}


@pytest.mark.parametrize(
    ("changes", "slug", "field"),
    [
        ({"role": "client"}, "validation-failed", "role"),
        ({"role": "creator"}, "validation-failed", "role"),
        ({"role": "service"}, "validation-failed", "role"),
        ({"role": "root"}, "validation-failed", "role"),
        ({"role": MISSING}, "validation-failed", "role"),
        ({"is_admin": True}, "validation-failed", "is_admin"),
        ({"status": "active"}, "validation-failed", "status"),
        ({"user_id": "00000000-0000-0000-0000-000000000001"}, "validation-failed", "user_id"),
        ({"business": {"company_name": "Acme"}}, "validation-failed", "business"),
        ({"password": "too short"}, "password-rejected", None),
        ({"password": "1q2w3e4r5t6y7u8i9o0p"}, "password-rejected", None),
        ({"password": "Grace Hopper 1906 grace"}, "password-rejected", None),
        ({"email": "not an email"}, "email-invalid", None),
    ],
)
async def test_admin_create_refusals_store_nothing(
    svc: Running, changes: dict[str, Any], slug: str, field: str | None
) -> None:
    admin = await svc.staff("admin")
    body = staff_body(**changes)
    before = await svc.stored_counts()
    response = await svc.client.post("/admin/users", headers=admin["auth"], json=body)
    problem = assert_problem(response, 422, slug)
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]], problem
    assert body["password"] not in response.text
    assert await svc.stored_counts() == before


async def test_admin_create_with_a_taken_email(svc: Running) -> None:
    admin = await svc.staff("admin")
    owner = await svc.register()
    before = await svc.stored_counts()
    response = await svc.client.post(
        "/admin/users", headers=admin["auth"], json=staff_body(email=owner["email"].upper())
    )
    assert_problem(response, 409, "email-taken")
    assert await svc.stored_counts() == before
    # The owner's account is untouched: same user, same role, still signs in.
    tokens = await svc.login(owner["email"], owner["password"])
    me = await svc.client.get(
        "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["user_id"] == owner["user_id"] and me.json()["role"] == "client"


@pytest.mark.parametrize(
    ("headers", "slug"),
    [({}, "unauthenticated"), ({"Authorization": "Bearer nonsense"}, "invalid-token")],
)
async def test_admin_create_without_a_token(
    svc: Running, headers: dict[str, str], slug: str
) -> None:
    before, denied = await svc.stored_counts(), len(await denials_at(svc, "/admin/users"))
    response = await svc.client.post("/admin/users", headers=headers, json=staff_body())
    assert_problem(response, 401, slug)
    assert await svc.stored_counts() == before
    assert len(await denials_at(svc, "/admin/users")) == denied + 1

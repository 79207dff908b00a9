"""`/auth/*` and the JWKS: registration rules, tokens and their claims, refresh rotation with
reuse detection, service tokens — every error path a problem+json."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher

from mmgen.events.envelope import Actor
from mmgen.events.mapper import NewEvent
from mmgen.identity.adapters.sessions import digest
from mmgen.identity.domain.events import AccountClosed
from mmgen.identity.domain.model import CLOSED
from mmgen.platform.auth import StaticKeySet, TokenVerifier
from mmgen.runtime.testing import assert_problem, erase_command, eventually
from services.identity.tests.identity_kit import Running, passphrase, running, unique_email

pytestmark = pytest.mark.asyncio(loop_scope="module")


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


# --- registration -------------------------------------------------------------------------------


async def test_register_creates_an_account_and_one_event(svc: Running) -> None:
    user = await svc.register(phone="+33 6 12 34 56 78", business={"company_name": "Acme SARL"})
    docs = await svc.stored_events(subject_id=user["user_id"])
    assert [d["event_type"] for d in docs] == ["identity.UserRegistered"]
    doc = docs[0]
    assert doc["data"] == {"role": "client", "registered_by": "self"}
    assert doc["pii"]["owner"] == f"subject:{user['user_id']}"
    assert sorted(doc["categories"]) == ["account", "business", "contact"]
    assert doc["action"] == "create" and doc["actor"]["id"] == user["user_id"]


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "admin"},
        {"role": "staff"},
        {"role": "service"},
        {"is_admin": True},
        {"status": "active"},
        {"user_id": "00000000-0000-0000-0000-000000000001"},
    ],
)
async def test_mass_assignment_at_registration_is_refused(
    svc: Running, extra: dict[str, Any]
) -> None:
    before = await svc.stored_counts()
    body = {"email": unique_email(), "password": passphrase(), "name": "Eve", "role": "client"}
    body.update(extra)
    response = await svc.client.post("/auth/register", json=body)
    problem = assert_problem(response, 422)
    assert problem["errors"], problem
    assert await svc.stored_counts() == before


@pytest.mark.parametrize(
    ("change", "slug"),
    [
        ({"email": "not an email"}, "email-invalid"),
        ({"password": "too short"}, "password-rejected"),
        ({"password": "1q2w3e4r5t6y7u8i9o0p"}, "password-rejected"),
        ({"name": ""}, None),
        ({"phone": "call me maybe"}, None),
        ({"business": {"company_name": "Acme", "owner": "me"}}, None),
    ],
)
async def test_invalid_registration(svc: Running, change: dict[str, Any], slug: str | None) -> None:
    before = await svc.stored_counts()
    body = {"email": unique_email(), "password": passphrase(), "name": "Eve", "role": "creator"}
    body.update(change)
    response = await svc.client.post("/auth/register", json=body)
    problem = assert_problem(response, 422, slug)
    assert body["password"] not in response.text or body["password"] == ""
    assert await svc.stored_counts() == before
    assert problem["instance"] == "/auth/register"


async def test_a_taken_email_answers_like_a_free_one_and_its_owner_is_told(svc: Running) -> None:
    user = await svc.register()
    before = await svc.stored_counts()
    fresh = {"email": unique_email(), "password": passphrase(), "name": "Eve", "role": "creator"}
    taken = {**fresh, "email": f"  {user['email'].upper()} ", "name": "Mallory"}
    answers = [await svc.client.post("/auth/register", json=body) for body in (taken, fresh)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert "user_id" not in answers[0].text
    after = await svc.stored_counts()
    # One account more (the free address); the taken one got a notice event, nothing else.
    assert after["users"] == before["users"] + 1
    assert after["email_index"] == before["email_index"] + 1
    notices = await svc.stored_events(
        subject_id=user["user_id"], event_type="identity.RegistrationAttempted"
    )
    assert (len(notices) == 1 and "pii" not in notices[0]) or notices[0].get("pii") is None
    [notice] = await svc.mails_to(user["email"], "someone tried to register")
    assert "reset your password" in notice.text()
    # The intruder's password does not sign in to the owner's account.
    refused = await svc.client.post(
        "/auth/token", json={"email": user["email"], "password": taken["password"]}
    )
    assert_problem(refused, 401, "invalid-credentials")


async def test_the_stored_password_hash_is_argon2id_at_owasp_cost(svc: Running) -> None:
    user = await svc.register()
    password_hash = await svc.stored_password_hash(user["user_id"])
    # The running app's parameters (the defaults: OWASP's minimum), not just the settings.
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), password_hash
    assert PasswordHasher().verify(password_hash, user["password"])
    # At rest it exists only sealed in the event.
    [doc] = await svc.stored_events(subject_id=user["user_id"])
    assert "$argon2" not in json.dumps(doc, default=str)


async def test_a_stronger_argon2_setting_is_the_one_used(settings_factory: Any) -> None:
    settings = settings_factory(argon2_memory_kib=32_768, argon2_time_cost=3)
    async with running(settings) as other:
        user = await other.register()
        password_hash = await other.stored_password_hash(user["user_id"])
    assert password_hash.startswith("$argon2id$v=19$m=32768,t=3,p=1$"), password_hash


async def test_request_body_limit_and_malformed_json(svc: Running) -> None:
    huge = {"email": unique_email(), "password": "p" * 2_000_000, "name": "x", "role": "client"}
    assert_problem(await svc.client.post("/auth/register", json=huge), 413)
    malformed = await svc.client.post(
        "/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem = assert_problem(malformed, 400, "malformed-json")
    assert problem["position"] == 1, problem


# --- tokens ---------------------------------------------------------------------------------------


async def test_access_token_claims_and_verification_from_jwks(svc: Running) -> None:
    user = await svc.user_with_token(role="creator")
    token = user["access_token"]
    header = jwt.get_unverified_header(token)
    claims = claims_of(token)
    jwks = (await svc.client.get("/.well-known/jwks.json")).json()
    assert header["alg"] == "EdDSA" and header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert set(claims) >= {"iss", "aud", "sub", "role", "iat", "exp", "jti"}
    assert claims["sub"] == user["user_id"] and claims["role"] == "creator"
    assert claims["iss"] == "mmgen-identity"
    # By default every service a creator may use, each of which verifies its own name.
    assert claims["aud"] == ["identity", "projects", "profiles", "consent", "retention"]
    assert claims["exp"] - claims["iat"] == 900 and user["expires_in"] == 900
    assert abs(claims["iat"] - time.time()) < 60
    assert user["token_type"] == "bearer" and user["refresh_token"].startswith("rt_")
    # Any service verifies it from the published JWKS alone.
    principal = await TokenVerifier(StaticKeySet.from_jwks(jwks), audience="profiles").verify(token)
    assert principal.subject_id == user["user_id"]
    for key in jwks["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # no private part


async def test_wrong_password_and_unknown_email_answer_the_same(svc: Running) -> None:
    user = await svc.register()
    wrong = await svc.client.post(
        "/auth/token", json={"email": user["email"], "password": passphrase()}
    )
    unknown = await svc.client.post(
        "/auth/token", json={"email": unique_email(), "password": user["password"]}
    )
    one = assert_problem(wrong, 401, "invalid-credentials")
    other = assert_problem(unknown, 401, "invalid-credentials")
    strip = {"trace_id"}
    assert {k: v for k, v in one.items() if k not in strip} == {
        k: v for k, v in other.items() if k not in strip
    }
    assert wrong.headers.keys() == unknown.headers.keys()


async def test_refresh_rotates_and_reuse_revokes_the_family(svc: Running) -> None:
    user = await svc.user_with_token()
    first = user["refresh_token"]
    second_pair = await svc.client.post("/auth/refresh", json={"refresh_token": first})
    assert second_pair.status_code == 200, second_pair.text
    second = second_pair.json()
    assert second["refresh_token"] != first
    assert claims_of(second["access_token"])["sub"] == user["user_id"]
    # The refreshed token is new, its sign-in is not: `auth_time` stays the login's.
    signed_in = claims_of(user["access_token"])["auth_time"]
    assert abs(signed_in - time.time()) < 60
    assert claims_of(second["access_token"])["auth_time"] == signed_in

    # A thief replays the spent token: refused, and the whole family is revoked...
    replay = await svc.client.post("/auth/refresh", json={"refresh_token": first})
    assert_problem(replay, 401, "invalid-refresh-token")
    # ...so the legitimate holder's current token stops working too.
    after = await svc.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(after, 401, "invalid-refresh-token")
    assert "identity.RefreshTokenReuseDetected" in await svc.event_types(subject_id=user["user_id"])
    # A new login starts a new family that works.
    again = await svc.login(user["email"], user["password"])
    ok = await svc.client.post("/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert ok.status_code == 200


async def test_a_stored_token_that_does_not_say_when_its_sign_in_was_is_never_recent(
    svc: Running,
) -> None:
    user = await svc.user_with_token()
    store = svc.identity.refresh_tokens
    await store.tokens.update_one(
        {"_id": digest(user["refresh_token"])}, {"$unset": {"auth_time": ""}}
    )
    refreshed = await svc.client.post(
        "/auth/refresh", json={"refresh_token": user["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims_of(refreshed.json()["access_token"])["auth_time"] == 0


@pytest.mark.parametrize("token", ["rt_" + "A" * 43, "garbage", "rt_" + "x" * 190])
async def test_unknown_refresh_tokens(svc: Running, token: str) -> None:
    assert_problem(
        await svc.client.post("/auth/refresh", json={"refresh_token": token}),
        401,
        "invalid-refresh-token",
    )


async def test_an_expired_refresh_token_is_refused_and_is_not_a_reuse(svc: Running) -> None:
    user = await svc.user_with_token()
    store = svc.identity.refresh_tokens
    key = digest(user["refresh_token"])
    await store.tokens.update_one(
        {"_id": key}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    # Presented twice (a client retrying): refused both times as expired, and an expired token
    # coming back is not a stolen copy: no reuse alarm, no family revoked.
    for _ in range(2):
        problem = assert_problem(
            await svc.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]}),
            401,
            "invalid-refresh-token",
        )
        assert problem["detail"] == "the refresh token has expired"
    assert (await store.tokens.find_one({"_id": key}))["status"] == "active"
    assert await store.tokens.count_documents({"user_id": user["user_id"]}) == 1  # no successor
    assert "identity.RefreshTokenReuseDetected" not in await svc.event_types(
        subject_id=user["user_id"]
    )


async def active_refresh_tokens(svc: Running, user_id: str) -> int:
    tokens = svc.identity.refresh_tokens.tokens
    return await tokens.count_documents({"user_id": user_id, "status": "active"})


@pytest.mark.parametrize("ending", ["close", "erase", "erase-with-hold"])
async def test_an_account_ended_during_a_refresh_gets_no_tokens(
    svc: Running, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """The account ends after the refresh token was spent and its successor minted, before
    the account is checked: closing/erasing revoked the tokens it saw, not the successor."""
    user = await svc.user_with_token()
    store = svc.identity.refresh_tokens
    spend = store.rotate

    async def spend_then_end_the_account(token: str) -> Any:
        outcome = await spend(token)
        if ending == "close":
            actor = Actor(id=user["user_id"], role="client")
            await svc.identity.accounts.close(user["user_id"], actor)
        else:
            held = ["contact"] if ending == "erase-with-hold" else []
            await svc.identity.erasure_commands.handle(erase_command(user["user_id"], held))
        return outcome

    monkeypatch.setattr(store, "rotate", spend_then_end_the_account)
    response = await svc.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    problem = assert_problem(response, 401, "invalid-refresh-token")
    assert problem["detail"] == "the account is closed"
    assert "access_token" not in response.text
    assert await active_refresh_tokens(svc, user["user_id"]) == 0


async def test_a_close_interrupted_before_revoking_leaves_refresh_useless(svc: Running) -> None:
    """Closing appends `AccountClosed`, applies it, then revokes the refresh tokens: if only
    the append happened (a crash), the projector applies the close, and the status alone
    refuses the refresh and revokes the family."""
    user = await svc.user_with_token()
    closed = NewEvent(AccountClosed(), subject_id=user["user_id"])
    await svc.identity.kernel.repository.append(user["user_id"], 1, [closed])

    async def status() -> str | None:
        account = await svc.identity.account_records.get(user["user_id"])
        return account.status if account else None

    await eventually(status, until=lambda found: found == CLOSED)
    assert await active_refresh_tokens(svc, user["user_id"]) == 1
    problem = assert_problem(
        await svc.client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]}),
        401,
        "invalid-refresh-token",
    )
    assert problem["detail"] == "the account is closed"
    assert await active_refresh_tokens(svc, user["user_id"]) == 0  # the successor too


async def test_refresh_tokens_are_stored_hashed(svc: Running) -> None:
    user = await svc.user_with_token()
    raw = user["refresh_token"]
    stored = [doc async for doc in svc.db["refresh_tokens"].find({})]
    assert stored and all(raw not in json.dumps(doc, default=str) for doc in stored)


# --- service tokens -------------------------------------------------------------------------------


async def test_service_token_for_internal_calls(svc: Running) -> None:
    auth = await svc.service_auth("retention")
    token = auth["Authorization"].split()[1]
    claims = claims_of(token)
    assert claims["role"] == "service" and claims["sub"] == "retention"
    assert claims["exp"] - claims["iat"] == 300
    user = await svc.register()
    footprint = await svc.client.get(
        f"/internal/subjects/{user['user_id']}/footprint", headers=auth
    )
    assert footprint.status_code == 200
    # A service token is not a person: /users/me refuses it.
    assert_problem(await svc.client.get("/users/me", headers=auth), 403, "role-not-allowed")


@pytest.mark.parametrize(
    "body",
    [
        {"service": "retention", "secret": "not-the-secret"},
        {"service": "stranger", "secret": "whatever"},
    ],
)
async def test_service_token_refused(svc: Running, body: dict[str, str]) -> None:
    assert_problem(
        await svc.client.post("/auth/service-token", json=body), 401, "invalid-service-credentials"
    )


async def test_internal_routes_refuse_people_and_other_services(svc: Running) -> None:
    person = await svc.user_with_token()
    url = f"/internal/subjects/{person['user_id']}/export"
    assert_problem(await svc.client.get(url), 401, "unauthenticated")
    assert_problem(await svc.client.get(url, headers=person["auth"]), 403, "service-token-required")
    other = await svc.service_auth("projects")
    assert_problem(await svc.client.get(url, headers=other), 403, "service-token-required")
    # Each refusal is a deny event about that subject.
    denials = await svc.stored_events(
        event_type="identity.AccessDenied", subject_id=person["user_id"]
    )
    assert len(denials) >= 2
    assert all(d["action"] == "deny" for d in denials)


async def test_openapi_and_asyncapi(svc: Running) -> None:
    spec = (await svc.client.get("/openapi.json")).json()
    for path in (
        "/auth/register",
        "/auth/token",
        "/auth/refresh",
        "/auth/service-token",
        "/.well-known/jwks.json",
        "/users/me",
        "/users/{user_id}",
        "/admin/users",
        "/internal/subjects/{subject_id}/export",
    ):
        assert path in spec["paths"], path
    assert "/internal/subjects/{subject_id}/footprint" in spec["paths"]
    asyncapi = (await svc.client.get("/asyncapi.json")).json()
    text = json.dumps(asyncapi)
    assert "identity.UserRegistered" in text and "identity.SubjectErased" in text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/token", {"email": "a@example.org"}),
        ("/auth/token", {"email": "a@example.org", "password": "x", "remember": True}),
        ("/auth/refresh", {}),
        ("/auth/refresh", {"refresh_token": "rt_x", "user_id": "someone"}),
        ("/auth/service-token", {"service": "Retention!", "secret": "x"}),
        ("/auth/service-token", {"service": "retention"}),
    ],
)
async def test_auth_validation_errors(svc: Running, path: str, body: dict[str, Any]) -> None:
    problem = assert_problem(await svc.client.post(path, json=body), 422)
    assert problem["errors"] and all("field" in error for error in problem["errors"])


async def test_wrong_method_and_unknown_route(svc: Running) -> None:
    assert_problem(await svc.client.get("/auth/token"), 405)
    assert_problem(await svc.client.get("/auth/nothing-here"), 404)

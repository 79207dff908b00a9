"""The first admin: from IDENTITY_BOOTSTRAP_ADMIN_EMAIL / _PASSWORD, once, whatever the restarts;
or through `POST /internal/admins` (what `mmgen admin create` calls), for the `admin-cli` service
only, every refusal a problem+json that stores nothing."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from mmgen.identity.adapters.hashing import service_secret
from mmgen.platform import ConfigurationError, dev_secret, key_bytes
from mmgen.runtime.testing import assert_problem
from services.identity.tests.identity_kit import (
    Running,
    TotpCodes,
    passphrase,
    running,
    unique_email,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_bootstrap_admin_is_created_once(settings_factory: Any) -> None:
    email, password = unique_email("boot"), passphrase()
    settings = settings_factory(bootstrap_admin_email=email, bootstrap_admin_password=password)
    async with running(settings) as svc:
        tokens = await svc.login(email, password)
        single = {"Authorization": f"Bearer {tokens['access_token']}"}
        # An admin reaches nothing but the enrolment of a second factor until it has one.
        refused = assert_problem(await svc.client.get("/users/me", headers=single), 403)
        assert refused["code"] == "mfa_required"
        enrolled = await svc.client.post(
            "/users/me/mfa/totp", headers=single, json={"current_password": password}
        )
        assert enrolled.status_code == 201, enrolled.text
        codes = TotpCodes(enrolled.json()["secret"])
        confirmed = await svc.client.post(
            "/users/me/mfa/totp/confirm", headers=single, json={"code": codes.next()}
        )
        assert confirmed.status_code == 204, confirmed.text
        tokens = await svc.login(email, password, totp=codes.next())
        me = await svc.client.get(
            "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.json()["role"] == "admin" and me.json()["mfa_enabled"] is True
        registered = await svc.stored_events(event_type="identity.UserRegistered")
        assert [d["data"]["registered_by"] for d in registered] == ["bootstrap"]
        # Asking again (what every later start does) creates nothing.
        again = await svc.identity.accounts.ensure_admin(email, password, "x", source="bootstrap")
        assert again is None


async def test_bootstrap_admin_with_a_weak_password_refuses_to_start(
    settings_factory: Any,
) -> None:
    settings = settings_factory(
        bootstrap_admin_email=unique_email("boot"), bootstrap_admin_password="admin"
    )
    with pytest.raises(ConfigurationError):
        async with running(settings):
            pass


# --- POST /internal/admins (`mmgen admin create`) ------------------------------------------------


async def test_internal_admin_creation(svc: Running) -> None:
    auth = await svc.service_auth("admin-cli")
    email, password = unique_email("root"), passphrase()
    created = await svc.client.post(
        "/internal/admins", headers=auth, json={"email": email, "password": password}
    )
    assert created.status_code == 201, created.text
    tokens = await svc.login(email, password)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["role"] == "admin" and claims["sub"] == created.json()["user_id"]
    [registered] = await svc.stored_events(
        subject_id=created.json()["user_id"], event_type="identity.UserRegistered"
    )
    assert registered["data"]["registered_by"] == "admin"
    assert registered["actor"] == {"id": "admin-cli", "role": "service"}


@pytest.mark.parametrize(
    ("body", "slug", "field"),
    [
        ({"password": "too short"}, "password-rejected", None),
        ({"password": "1q2w3e4r5t6y7u8i9o0p"}, "password-rejected", None),
        ({"email": "not an email"}, "email-invalid", None),
        ({"password": None}, "validation-failed", "password"),
        ({"role": "staff"}, "validation-failed", "role"),
        ({"is_admin": True}, "validation-failed", "is_admin"),
        ({"name": ""}, "validation-failed", "name"),
    ],
)
async def test_internal_admin_refusals_store_nothing(
    svc: Running, body: dict[str, Any], slug: str, field: str | None
) -> None:
    auth = await svc.service_auth("admin-cli")
    request = {"email": unique_email("root"), "password": passphrase(), **body}
    request = {name: value for name, value in request.items() if value is not None}
    before = await svc.stored_counts()
    response = await svc.client.post("/internal/admins", headers=auth, json=request)
    problem = assert_problem(response, 422, slug)
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]], problem
    assert await svc.stored_counts() == before


async def test_internal_admin_with_a_taken_email(svc: Running) -> None:
    auth = await svc.service_auth("admin-cli")
    owner = await svc.register()
    before = await svc.stored_counts()
    response = await svc.client.post(
        "/internal/admins",
        headers=auth,
        json={"email": owner["email"].upper(), "password": passphrase()},
    )
    assert_problem(response, 409, "email-taken")
    assert await svc.stored_counts() == before
    await svc.login(owner["email"], owner["password"])  # the owner's account is untouched


@pytest.mark.parametrize(
    ("caller", "status", "slug"),
    [
        ("none", 401, "unauthenticated"),
        ("garbage", 401, "invalid-token"),
        ("client", 403, "service-token-required"),
        ("admin", 403, "service-token-required"),
        ("retention", 403, "service-token-required"),
        ("projects", 403, "service-token-required"),
    ],
)
async def test_internal_admin_needs_the_admin_cli_service_token(
    svc: Running, caller: str, status: int, slug: str
) -> None:
    if caller == "none":
        headers: dict[str, str] = {}
    elif caller == "garbage":
        headers = {"Authorization": "Bearer nonsense"}
    elif caller == "client":
        headers = (await svc.user_with_token())["auth"]
    elif caller == "admin":
        headers = (await svc.staff("admin"))["auth"]  # an admin person is not the CLI
    else:
        headers = await svc.service_auth(caller)
    before = await svc.stored_counts()
    body = {"email": unique_email("root"), "password": passphrase()}
    response = await svc.client.post("/internal/admins", headers=headers, json=body)
    assert_problem(response, status, slug)
    assert await svc.stored_counts() == before
    denials = await svc.stored_events(event_type="identity.AccessDenied")
    assert denials[-1]["data"]["route"] == "/internal/admins"
    assert denials[-1]["data"]["code"] == slug


async def test_the_admin_cli_secret_derived_from_the_public_default_is_refused(
    svc: Running,
) -> None:
    """What an outsider can compute from the repository (the `dev_secret` default stretched by
    `key_bytes`) is no credential of a service that runs on its own secrets."""
    public_key = key_bytes(dev_secret("identity-service-credentials-key"))
    guessed = service_secret(public_key, "admin-cli")
    response = await svc.client.post(
        "/auth/service-token", json={"service": "admin-cli", "secret": guessed}
    )
    assert_problem(response, 401, "invalid-service-credentials")
    real = service_secret(svc.identity.service_credentials_key, "admin-cli")
    assert real != guessed

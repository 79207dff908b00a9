"""The stack's staff, as the system tests need them: accounts the bootstrap admin makes, the
policy versions it publishes, and the audit log a compliance officer reads.

- `staff_member`: `POST /admin/users` (only an admin may make staff, compliance or admin
  accounts), then a sign-in with TOTP (`people.sign_in` enrols it the first time).
- `publish_policy`: a privacy policy version at consent, in effect since yesterday, so that
  consents may be granted under it at once.
- `audit_entries`: every page of consent's `/audit/entries`, read for the legal purpose.

Async (`httpx.AsyncClient`) and sync flavours where the tests use both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests import people

AUDIT_PURPOSE = {"X-Purpose": "legal_compliance"}


@dataclass(frozen=True)
class Member:
    """An account the admin made, with a token signed in as the account."""

    user_id: str
    email: str
    password: str
    token: str


@dataclass(frozen=True)
class Officer(Member):
    def audit_headers(self) -> dict[str, str]:
        return people.bearer(self.token, **AUDIT_PURPOSE)


def new_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


def _account(role: str, email: str | None, name: str | None) -> dict[str, str]:
    return {
        "email": email or f"{role}-{secrets.token_hex(4)}@example.test",
        "password": new_password(),
        "name": name or f"Pat {role.title()}",
        "role": role,
    }


def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["user_id"])


async def staff_member(
    http: httpx.AsyncClient,
    identity: str,
    admin_token: str,
    role: str,
    *,
    email: str | None = None,
    name: str | None = None,
) -> Member:
    """A `role` account made by the admin, signed in with TOTP."""
    body = _account(role, email, name)
    response = await http.post(
        f"{identity}/admin/users", json=body, headers=people.bearer(admin_token)
    )
    user_id = _created(response)
    token = await people.sign_in(http, identity, body["email"], body["password"])
    return Member(user_id, body["email"], body["password"], token)


def staff_member_sync(
    identity: str,
    admin_token: str,
    role: str,
    *,
    name: str | None = None,
    second_factor: bool = True,
    timeout: float = 10,
) -> Member:
    """As `staff_member`; without `second_factor` the token is the password-only one the
    account gets before it enrols TOTP (which may do nothing but enrol)."""
    body = _account(role, None, name)
    response = httpx.post(
        f"{identity}/admin/users", json=body, headers=people.bearer(admin_token), timeout=timeout
    )
    user_id = _created(response)
    if second_factor:
        token = people.sign_in_sync(identity, body["email"], body["password"], timeout)
    else:
        credentials = {"email": body["email"], "password": body["password"]}
        signed = httpx.post(f"{identity}/auth/token", json=credentials, timeout=timeout)
        assert signed.status_code == 200, signed.text
        token = str(signed.json()["access_token"])
    return Member(user_id, body["email"], body["password"], token)


async def compliance_officer(http: httpx.AsyncClient, system: Any) -> Officer:
    """A compliance officer made by the stack's bootstrap admin."""
    identity = system.url("identity")
    admin = await people.sign_in(http, identity, system.admin_email, system.admin_password)
    member = await staff_member(http, identity, admin, "compliance", name="Oscar Officer")
    return Officer(member.user_id, member.email, member.password, member.token)


def compliance_officer_sync(system: Any) -> Officer:
    identity = system.url("identity")
    admin = people.sign_in_sync(identity, system.admin_email, system.admin_password)
    member = staff_member_sync(identity, admin, "compliance", name="Oscar Officer")
    return Officer(member.user_id, member.email, member.password, member.token)


def _policy(version: str, text: str) -> dict[str, str]:
    return {
        "version": version,
        "effective_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "title": "Privacy policy",
        "text": text,
    }


async def publish_policy(
    http: httpx.AsyncClient,
    consent: str,
    admin_token: str,
    version: str,
    text: str = "We keep only what we need.",
) -> None:
    response = await http.post(
        f"{consent}/policies", json=_policy(version, text), headers=people.bearer(admin_token)
    )
    assert response.status_code == 201, response.text


def publish_policy_sync(
    consent: str, admin_token: str, version: str, text: str = "We keep only what we need."
) -> None:
    response = httpx.post(
        f"{consent}/policies",
        json=_policy(version, text),
        headers=people.bearer(admin_token),
        timeout=10,
    )
    assert response.status_code == 201, response.text


async def audit_entries(
    http: httpx.AsyncClient, consent: str, officer_token: str, **filters: str
) -> list[dict[str, Any]]:
    """Every entry of the audit log matching `filters`, all pages (each read is audited too)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**filters, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = await http.get(
            f"{consent}/audit/entries",
            params=params,
            headers=people.bearer(officer_token, **AUDIT_PURPOSE),
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items

"""A compliance officer at the running stack: made by the bootstrap admin, signed in with TOTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from tests import people

AUDIT_PURPOSE = {"X-Purpose": "legal_compliance"}


@dataclass
class Officer:
    user_id: str
    email: str
    password: str
    token: str

    def audit_headers(self) -> dict[str, str]:
        return people.bearer(self.token, **AUDIT_PURPOSE)


async def compliance_officer(http: httpx.AsyncClient, system: Any) -> Officer:
    identity = system.url("identity")
    admin = await people.sign_in(http, identity, system.admin_email, system.admin_password)
    email = f"officer-{secrets.token_hex(4)}@example.test"
    password = "pw-" + secrets.token_urlsafe(18)
    created = await http.post(
        f"{identity}/admin/users",
        json={"email": email, "password": password, "name": "Oscar Officer", "role": "compliance"},
        headers=people.bearer(admin),
    )
    assert created.status_code == 201, created.text
    token = await people.sign_in(http, identity, email, password)
    return Officer(created.json()["user_id"], email, password, token)

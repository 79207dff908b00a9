"""Access tokens against the running services: each service takes only tokens issued for it, and
a password change ends every token issued before it, at identity and elsewhere, at once.

Everything goes through the services' public HTTP APIs; a refusal is the generic 401.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import jwt

from tests import people

DEADLINE_S = 30.0
#: An authenticated read at each service that a creator's valid token gets past verification
#: (the answer may still be 403 or 404: what matters is that it is not 401).
READS = {
    "identity": "/users/me",
    "projects": "/projects",
    "profiles": "/profiles/me",
    "consent": "/consents/me",
    "retention": "/privacy-requests",
}


def _creator(http: httpx.Client, identity: str) -> tuple[str, str]:
    email, password = f"aud-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
    body = {"email": email, "password": password, "name": "Cleo Creator", "role": "creator"}
    assert http.post(f"{identity}/auth/register", json=body).status_code == 202
    return email, password


def _token(
    http: httpx.Client, identity: str, email: str, password: str, audience: list[str] | None
) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": password}
    if audience is not None:
        body["audience"] = audience
    return http.post(f"{identity}/auth/token", json=body)


def _aud(token: str) -> list[str]:
    return list(jwt.decode(token, options={"verify_signature": False})["aud"])


def _status(http: httpx.Client, system: Any, service: str, token: str) -> int:
    return http.get(system.url(service) + READS[service], headers=people.bearer(token)).status_code


def test_each_service_takes_only_tokens_issued_for_it(system: Any) -> None:
    identity = system.url("identity")
    services = [name for name in READS if system.has(name)]
    with httpx.Client(timeout=15) as http:
        email, password = _creator(http, identity)
        everywhere = _token(http, identity, email, password, None)
        assert everywhere.status_code == 200, everywhere.text
        assert _aud(everywhere.json()["access_token"]) == list(READS)
        for service in services:
            # Valid for every other service, not for this one.
            others = [name for name in READS if name != service]
            asked = _token(http, identity, email, password, others)
            assert asked.status_code == 200, asked.text
            elsewhere = asked.json()["access_token"]
            refused = http.get(
                system.url(service) + READS[service], headers=people.bearer(elsewhere)
            )
            assert refused.status_code == 401, (service, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["detail"] == "the access token is invalid"
            assert _status(http, system, service, everywhere.json()["access_token"]) != 401

        # A token asked for projects only works there and nowhere else.
        only = _token(http, identity, email, password, ["projects"])
        assert only.status_code == 200, only.text
        projects_only = only.json()["access_token"]
        assert _aud(projects_only) == ["projects"]
        assert _status(http, system, "projects", projects_only) == 200
        assert _status(http, system, "profiles", projects_only) == 401
        assert _status(http, system, "identity", projects_only) == 401

        # A refresh keeps the audiences of the sign-in.
        refreshed = http.post(
            f"{identity}/auth/refresh", json={"refresh_token": only.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert _aud(refreshed.json()["access_token"]) == ["projects"]


def test_a_token_for_a_service_the_role_may_not_use_is_not_issued(system: Any) -> None:
    identity = system.url("identity")
    with httpx.Client(timeout=15) as http:
        email, password = _creator(http, identity)
        for audience in (["console"], ["projects", "console"], ["billing"]):
            refused = _token(http, identity, email, password, audience)
            assert refused.status_code == 400, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            problem = refused.json()
            assert problem["code"] == "invalid_target"
            assert problem["refused"] == sorted(set(audience) - {"projects"})
            assert "access_token" not in problem and "refresh_token" not in problem


def test_a_password_change_ends_every_earlier_token_at_once(system: Any) -> None:
    identity, projects = system.url("identity"), system.url("projects")
    with httpx.Client(timeout=15) as http:
        email, password = _creator(http, identity)
        # Two sessions of the same account (two devices).
        first, second = (_token(http, identity, email, password, None) for _ in range(2))
        assert first.status_code == second.status_code == 200
        mine, other = first.json()["access_token"], second.json()["access_token"]
        for url in (f"{identity}/users/me", f"{projects}/projects"):
            assert http.get(url, headers=people.bearer(other)).status_code == 200

        new_password = secrets.token_urlsafe(18)
        changed = http.post(
            f"{identity}/users/me/password",
            headers=people.bearer(mine),
            json={"current_password": password, "new_password": new_password},
        )
        assert changed.status_code == 200, changed.text
        fresh = changed.json()["access_token"]

        # Identity refuses the other session's token at once (its own read model).
        refused = http.get(f"{identity}/users/me", headers=people.bearer(other))
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == "the access token is invalid"
        # Projects refuses it as soon as it has read identity's PasswordChanged.
        deadline = time.monotonic() + DEADLINE_S
        while http.get(f"{projects}/projects", headers=people.bearer(other)).status_code != 401:
            assert time.monotonic() < deadline, "projects still takes a token from before"
            time.sleep(0.2)
        # The changer's own earlier token is just as void, and the other session cannot refresh.
        assert http.get(f"{projects}/projects", headers=people.bearer(mine)).status_code == 401
        stale = http.post(
            f"{identity}/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
        )
        assert stale.status_code == 401

        # The token handed out with the change, and a new sign-in, work everywhere.
        again = _token(http, identity, email, new_password, None)
        assert again.status_code == 200, again.text
        for token in (fresh, again.json()["access_token"]):
            for url in (f"{identity}/users/me", f"{projects}/projects"):
                answer = http.get(url, headers=people.bearer(token))
                assert answer.status_code == 200, (url, answer.text)

"""Authentication, roles, purposes and audited refusals, through HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mmgen.platform import InMemoryDenialRecorder, PlatformApp
from mmgen.platform.auth import InMemorySubjectDenylist, Role, SigningKey, issue_token

Auth = Callable[[str], dict[str, str]]
Token = Callable[..., str]


def b64json(obj: Any) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": "mmgen-identity",
        "aud": ["projects"],
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


def attack_tokens(key: SigningKey) -> dict[str, str]:
    """Every forged or unacceptable token the foundation issue lists."""
    raw_public = key.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    hs_input = (
        f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64json(valid_claims())}"
    )
    hs_signature = base64.urlsafe_b64encode(
        hmac.new(raw_public, hs_input.encode(), hashlib.sha256).digest()
    ).rstrip(b"=")
    header, _, signature = issue_token(key, subject="victim", role="client").split(".")
    no_exp = valid_claims()
    del no_exp["exp"]
    past = datetime.now(UTC) - timedelta(hours=2)
    return {
        "alg-none": f"{b64json({'alg': 'none', 'kid': key.kid})}.{b64json(valid_claims())}.",
        "hs256-with-public-key": f"{hs_input}.{hs_signature.decode()}",
        "unknown-kid": issue_token(SigningKey.generate(), subject="x", role="admin"),
        "expired": issue_token(key, subject="x", role="client", now=past),
        "wrong-aud": issue_token(key, subject="x", role="client", audience="elsewhere"),
        "wrong-iss": issue_token(key, subject="x", role="client", issuer="evil-identity"),
        "missing-exp": key.sign(no_exp),
        "tampered": f"{header}.{b64json(valid_claims(sub='victim', role='admin'))}.{signature}",
    }


ATTACKS = [
    "alg-none",
    "hs256-with-public-key",
    "unknown-kid",
    "expired",
    "wrong-aud",
    "wrong-iss",
    "missing-exp",
    "tampered",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_each_jwt_attack_is_401(
    client: httpx.AsyncClient,
    signing_key: SigningKey,
    recorder: InMemoryDenialRecorder,
    auth: Auth,
    attack: str,
) -> None:
    response = await client.get("/widgets/1", headers=auth(attack_tokens(signing_key)[attack]))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:mmgen:problem:invalid-token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    [(principal, method, path, reason)] = recorder.denials
    assert principal is None
    assert (method, path, reason.code, reason.status) == ("GET", "/widgets/1", "invalid-token", 401)


async def test_a_valid_token_is_200(client: httpx.AsyncClient, token: Token, auth: Auth) -> None:
    subject = str(uuid.uuid4())
    response = await client.get("/widgets/7", headers=auth(token("creator", subject=subject)))
    assert response.status_code == 200
    assert response.json() == {"widget_id": 7, "subject": subject, "role": "creator"}


async def test_a_denylisted_subject_is_401(
    client: httpx.AsyncClient,
    token: Token,
    auth: Auth,
    denylist: InMemorySubjectDenylist,
    recorder: InMemoryDenialRecorder,
) -> None:
    subject = str(uuid.uuid4())
    headers = auth(token("client", subject=subject))
    assert (await client.get("/widgets/1", headers=headers)).status_code == 200
    denylist.deny(subject)  # e.g. identity.SubjectClosed was consumed
    response = await client.get("/widgets/1", headers=headers)
    assert response.status_code == 401
    # The answer does not tell that the account was closed (the same as any invalid token)...
    garbage = await client.get("/widgets/1", headers=auth("not-a-token"))
    assert response.json()["detail"] == garbage.json()["detail"] == "the access token is invalid"
    assert "revoked" not in response.text
    # ...the audit does, as a refusal of that (verified) subject.
    (principal, _, _, reason), (anonymous, _, _, other) = recorder.denials
    assert principal is not None and principal.subject_id == subject
    assert (reason.code, reason.reason) == ("invalid-token", "subject revoked")
    assert anonymous is None and other.reason == "malformed token"


@pytest.mark.parametrize("role", ["staff", "compliance", "admin"])
async def test_privileged_reads_without_purpose_are_refused_and_audited(
    client: httpx.AsyncClient,
    token: Token,
    auth: Auth,
    recorder: InMemoryDenialRecorder,
    role: str,
) -> None:
    subject = str(uuid.uuid4())
    response = await client.get("/subjects/s-1", headers=auth(token(role, subject=subject)))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:mmgen:problem:purpose-required"
    assert "support" in body["allowed_purposes"]
    [(principal, method, path, reason)] = recorder.denials
    assert principal is not None
    assert principal.subject_id == subject
    assert principal.role == Role(role)
    assert (method, path) == ("GET", "/subjects/s-1")
    assert reason.code == "purpose-required"
    assert reason.status == 403


async def test_an_unknown_purpose_is_refused_and_audited(
    client: httpx.AsyncClient, token: Token, auth: Auth, recorder: InMemoryDenialRecorder
) -> None:
    response = await client.get(
        "/subjects/s-1", headers={**auth(token("staff")), "X-Purpose": "marketing"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:mmgen:problem:purpose-unknown"
    assert [reason.code for *_, reason in recorder.denials] == ["purpose-unknown"]


@pytest.mark.parametrize("purpose", ["project_execution", "support", "legal_compliance"])
async def test_a_declared_purpose_lets_staff_read(
    client: httpx.AsyncClient,
    token: Token,
    auth: Auth,
    recorder: InMemoryDenialRecorder,
    purpose: str,
) -> None:
    response = await client.get(
        "/subjects/s-1", headers={**auth(token("staff")), "X-Purpose": purpose}
    )
    assert response.status_code == 200
    assert response.json() == {"subject_id": "s-1", "purpose": purpose, "role": "staff"}
    assert recorder.denials == []


@pytest.mark.parametrize("purpose", ["payment_processing", "security"])
@pytest.mark.parametrize("role", ["staff", "compliance", "admin", "client"])
async def test_a_purpose_the_route_does_not_accept_is_refused_and_audited(
    client: httpx.AsyncClient,
    token: Token,
    auth: Auth,
    recorder: InMemoryDenialRecorder,
    role: str,
    purpose: str,
) -> None:
    subject = str(uuid.uuid4())
    response = await client.get(
        "/subjects/s-1", headers={**auth(token(role, subject=subject)), "X-Purpose": purpose}
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:mmgen:problem:purpose-not-allowed"
    assert body["allowed_purposes"] == ["legal_compliance", "project_execution", "support"]
    assert purpose in body["detail"]
    [(principal, method, path, reason)] = recorder.denials
    assert principal is not None and principal.subject_id == subject
    assert (method, path, reason.code, reason.status) == (
        "GET",
        "/subjects/s-1",
        "purpose-not-allowed",
        403,
    )


async def test_the_refusals_of_a_purpose_name_the_routes_own_purposes(
    client: httpx.AsyncClient, token: Token, auth: Auth
) -> None:
    missing = await client.get("/subjects/s-1", headers=auth(token("staff")))
    unknown = await client.get(
        "/subjects/s-1", headers={**auth(token("staff")), "X-Purpose": "curiosity"}
    )
    for response, slug in ((missing, "purpose-required"), (unknown, "purpose-unknown")):
        assert response.json()["type"] == f"urn:mmgen:problem:{slug}"
        assert response.json()["allowed_purposes"] == [
            "legal_compliance",
            "project_execution",
            "support",
        ]


async def test_a_client_needs_no_purpose(
    client: httpx.AsyncClient, token: Token, auth: Auth
) -> None:
    response = await client.get("/subjects/s-1", headers=auth(token("client")))
    assert response.status_code == 200
    assert response.json()["purpose"] is None


async def test_a_wrong_role_is_refused_and_audited(
    client: httpx.AsyncClient, token: Token, auth: Auth, recorder: InMemoryDenialRecorder
) -> None:
    subject = str(uuid.uuid4())
    response = await client.get(
        "/subjects/s-1", headers={**auth(token("creator", subject=subject)), "X-Purpose": "support"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:mmgen:problem:role-not-allowed"
    [(principal, _, _, reason)] = recorder.denials
    assert principal is not None and principal.subject_id == subject
    assert reason.code == "role-not-allowed"


@pytest.mark.parametrize("amr", [None, ["pwd"], ["otp"], "otp", ["pwd", "hwk"]])
@pytest.mark.parametrize("role", ["staff", "compliance", "admin"])
async def test_a_privileged_token_without_otp_reaches_no_data_and_is_audited(
    client: httpx.AsyncClient,
    token: Token,
    auth: Auth,
    recorder: InMemoryDenialRecorder,
    role: str,
    amr: Any,
) -> None:
    subject = str(uuid.uuid4())
    single = token(role, subject=subject, amr=None, extra_claims={"amr": amr} if amr else None)
    headers = {**auth(single), "X-Purpose": "support"}
    for path in ("/subjects/s-1", "/widgets/1"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "urn:mmgen:problem:mfa-required"
        assert body["code"] == "mfa_required"
    refusals = [(p.subject_id if p else None, r.code, r.status) for p, _, _, r in recorder.denials]
    assert refusals == [(subject, "mfa-required", 403)] * 2
    # ...but the route that enrols the second factor lets them in.
    enrolled = await client.post("/me/second-factor", headers=auth(single))
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["subject"] == subject


@pytest.mark.parametrize("role", ["client", "creator"])
async def test_people_without_privileges_need_no_second_factor(
    client: httpx.AsyncClient, token: Token, auth: Auth, role: str
) -> None:
    response = await client.get("/widgets/1", headers=auth(token(role, amr=["pwd"])))
    assert response.status_code == 200, response.text


async def test_a_privileged_token_with_otp_reads_with_its_purpose(
    client: httpx.AsyncClient, token: Token, auth: Auth, recorder: InMemoryDenialRecorder
) -> None:
    headers = {**auth(token("compliance", amr=["pwd", "otp"])), "X-Purpose": "support"}
    response = await client.get("/subjects/s-1", headers=headers)
    assert response.status_code == 200, response.text
    assert recorder.denials == []


async def test_a_services_own_refusal_is_audited_once(
    client: httpx.AsyncClient, token: Token, auth: Auth, recorder: InMemoryDenialRecorder
) -> None:
    subject = str(uuid.uuid4())
    response = await client.get(
        "/projects/p1/secret", headers=auth(token("client", subject=subject))
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "not a member of this project"
    [(principal, _, path, reason)] = recorder.denials
    assert principal is not None and principal.subject_id == subject
    assert path == "/projects/p1/secret"
    assert reason.code == "forbidden"


async def test_a_failing_recorder_does_not_turn_a_refusal_into_an_error(
    make_app: Callable[..., PlatformApp], serve: Any, token: Token, auth: Auth
) -> None:
    class BrokenRecorder:
        async def record(self, principal: Any, request: Any, reason: Any) -> None:
            raise ConnectionError("event store down")

    async with serve(make_app(denial_recorder=BrokenRecorder())) as c:
        response = await c.get("/subjects/s-1", headers=auth(token("staff")))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:mmgen:problem:purpose-required"


async def test_internal_routes_need_a_service_token(
    client: httpx.AsyncClient, token: Token, auth: Auth, recorder: InMemoryDenialRecorder
) -> None:
    ok = await client.get("/internal/ping", headers=auth(token("service", subject="retention")))
    assert ok.status_code == 200
    assert ok.json() == {"caller": "retention"}

    human = await client.get("/internal/ping", headers=auth(token("admin")))
    assert human.status_code == 403
    assert human.json()["type"] == "urn:mmgen:problem:service-token-required"

    other = await client.get("/internal/ping", headers=auth(token("service", subject="profiles")))
    assert other.status_code == 403
    assert [reason.code for *_, reason in recorder.denials] == [
        "service-token-required",
        "service-token-required",
    ]


async def test_public_routes_and_successes_record_no_denial(
    client: httpx.AsyncClient, recorder: InMemoryDenialRecorder
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no-such-page")).status_code == 404
    assert recorder.denials == []

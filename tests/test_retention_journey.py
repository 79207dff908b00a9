"""The privacy journey across services as processes: identity, consent and retention.

A subject registers at identity and grants a consent; asks retention for access (the package
holds identity's, consent's and retention's exports); asks for erasure, which reaches
`verified` within a bound, after which every service's footprint shows nothing readable and
the signed receipt verifies with `mmgen receipt verify` against the audit log's pinned key.
A hold on a category ends the erasure `partially_completed` naming the hold; releasing it
ends it `verified`. A service stopped during an erasure keeps the request `in_progress`,
showing which service has not answered; started again, it answers and the request completes.

The stack is this module's own (the session's broker and database, its own prefixes), since
one test stops and restarts identity. What is checked comes from the services' own answers
(footprints over their internal routes, the receipt's evidence from the audit log).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from mmgen.cli import stack
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra, unique_name
from tests import people
from tests.officers import compliance_officer_sync, publish_policy_sync

MMGEN = str(Path(sys.executable).with_name("mmgen"))
SERVICES = ("identity", "consent", "retention")
LEGAL = {"X-Purpose": "legal_compliance"}
#: How long an erasure may take to reach `verified` here (the issue aims at 5 s; the bench
#: measures it; a shared 2-core test machine gets slack).
VERIFIED_WITHIN_S = 30.0


@dataclass
class Stack:
    config: stack.StackConfig
    entries: dict[str, stack.ServiceEntry]
    components: dict[str, stack.Component]
    admin_email: str
    admin_password: str

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    def stop(self, service: str) -> None:
        stack.stop_components([self.components.pop(service)])

    def start(self, service: str) -> None:
        [component] = stack.start_services(self.config, [self.entries[service]])
        self.components[service] = component

    def log_tail(self, service: str) -> str:
        return stack.component_log_tail(self.components[service], 60)


@pytest.fixture(scope="module")
def journey_stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    found = {s.name: s for s in stack.discover_services() if s.name in SERVICES}
    assert set(found) == set(SERVICES), f"installed: {sorted(found)}"
    admin = stack.BootstrapAdmin.fresh()
    config = stack.StackConfig(
        state_dir=tmp_path_factory.mktemp("journey"),
        service_ports={name: free_port() for name in SERVICES},
        topic_prefix=unique_name("jrn") + ".",
        database_prefix=unique_name("jrn_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        mail_port=infra.smtp_port or 2525,
        ready_timeout=60.0,
        extra_env={
            **admin.env(),
            "RETENTION_SERVICES": json.dumps(list(SERVICES)),
            "RETENTION_SCHEDULER_INTERVAL_SECONDS": "3",
            "CONSENT_AUDIT_CHECKPOINT_EVERY_SECONDS": "1",
        },
    )
    components: dict[str, stack.Component] = {}
    running = Stack(config, found, components, admin.email, admin.password)
    try:
        for name in SERVICES:
            running.start(name)
        yield running
    finally:
        stack.stop_components(list(components.values()))


# --- helpers -------------------------------------------------------------------------------


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _person(s: Stack, role: str = "creator") -> tuple[str, str, str, str]:
    """A subject who registered: (user id, email, password, fresh token)."""
    email, password = f"{role}-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
    identity = s.url("identity")
    user_id, token = people.register_sync(
        identity,
        {"email": email, "password": password, "name": "Mia Rossi", "role": role,
         "phone": "+393331234567"},
    )  # fmt: skip
    return user_id, email, password, token


def _service_token(s: Stack) -> str:
    """A token of the `admin-cli` client (may read every service's footprint)."""
    stored = json.loads(
        (s.config.state_dir / "secrets" / "identity-service-clients.json").read_text()
    )
    response = httpx.post(
        f"{s.url('identity')}/auth/service-token",
        json={"service": "admin-cli", "secret": stored["clients"]["admin-cli"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _poll(probe: Callable[[], Any], until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s: {value}"
        time.sleep(0.1)


def _request(s: Stack, officer: str, request_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{s.url('retention')}/privacy-requests/{request_id}",
        headers=_bearer(officer, **LEGAL),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _file(s: Stack, token: str, kind: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{s.url('retention')}/privacy-requests",
        json={"type": kind, **extra},
        headers=_bearer(token),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _grant_marketing(s: Stack, token: str) -> None:
    consent = s.url("consent")
    version = f"jrn-{uuid.uuid4().hex[:8]}"
    admin = people.sign_in_sync(s.url("identity"), s.admin_email, s.admin_password)
    publish_policy_sync(consent, admin, version)
    granted = httpx.put(
        f"{consent}/consents/me/marketing.email",
        json={"granted": True, "policy_version": version},
        headers=_bearer(token),
        timeout=10,
    )
    assert granted.status_code == 200, granted.text


def _footprints(s: Stack, subject: str) -> dict[str, dict[str, Any]]:
    token = _service_token(s)
    out = {}
    for service in SERVICES:
        response = httpx.get(
            f"{s.url(service)}/internal/subjects/{subject}/footprint",
            headers=_bearer(token),
            timeout=10,
        )
        assert response.status_code == 200, f"{service}: {response.text}"
        out[service] = response.json()
    return out


def _mmgen(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MMGEN, *args], env=env, capture_output=True, text=True, timeout=120)


# --- the journey ---------------------------------------------------------------------------


def test_access_then_erasure_to_verified_with_a_receipt_that_verifies(
    journey_stack: Stack, tmp_path: Path
) -> None:
    s = journey_stack
    officer = compliance_officer_sync(s).token
    subject, _email, _password, token = _person(s)
    _grant_marketing(s, token)

    # Access: one package with every service's export.
    access = _file(s, token, "access")
    _poll(lambda: _request(s, officer, access["request_id"]), lambda r: r["status"] == "completed",
          30, "access package")  # fmt: skip
    exported = httpx.get(
        f"{s.url('retention')}/privacy-requests/{access['request_id']}/export",
        headers=_bearer(token),
        timeout=30,
    )
    assert exported.status_code == 200, exported.text
    package, schema = exported.json()["package"], exported.json()["schema"]
    jsonschema.Draft202012Validator(schema).validate(package)
    by_service = {x["service"]: x for x in package["services"]}
    assert set(by_service) == set(SERVICES)
    assert by_service["identity"]["records"], by_service["identity"]
    assert any("marketing.email" in key for key in by_service["consent"]["records"])
    assert {r["type"] for r in by_service["retention"]["records"]["privacy_requests"]} == {"access"}
    assert all(
        _readable(f) > 0 for name, f in _footprints(s, subject).items() if name != "retention"
    )

    # Erasure: verified within the bound, then nothing readable anywhere.
    started = time.monotonic()
    erasure = _file(s, token, "erasure")
    done = _poll(lambda: _request(s, officer, erasure["request_id"]),
                 lambda r: r["status"] == "verified", VERIFIED_WITHIN_S, "verified")  # fmt: skip
    took = time.monotonic() - started
    print(f"erasure verified in {took:.2f} s")
    assert sorted(done["acknowledgements"]) == sorted(SERVICES)
    footprints = _footprints(s, subject)
    assert {name: f["readable_personal_fields"] for name, f in footprints.items()} == {
        name: 0 for name in SERVICES
    }
    assert all(f["key_erased"] for f in footprints.values())

    # The receipt, verified offline by the CLI against the pinned audit-log key.
    receipt_path = tmp_path / "receipt.jws"
    consent = s.url("consent")
    key = httpx.get(f"{consent}/audit/public-key", timeout=10).text.strip()
    pinned = tmp_path / "audit.pub"
    pinned.write_text(key + "\n")
    env = {
        **os.environ,
        "MMGEN_RETENTION_URL": s.url("retention"),
        "MMGEN_RETENTION_TOKEN": officer,
        "MMGEN_AUDIT_URL": consent,
        "MMGEN_AUDIT_TOKEN": officer,
        "MMGEN_AUDIT_PUBLIC_KEY": f"@{pinned}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    exported_receipt = _poll(
        lambda: _mmgen(
            "privacy", "export", erasure["request_id"], "--out", str(receipt_path), env=env
        ),
        lambda p: p.returncode == 0,
        30,
        "a receipt (a signed audit head covering every acknowledgement)",
    )
    assert "erasure receipt" in exported_receipt.stdout
    verified = _mmgen("receipt", "verify", str(receipt_path), env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID" in verified.stdout and subject in verified.stdout
    for service in SERVICES:
        assert service in verified.stdout

    token_text = receipt_path.read_text().strip()
    head, body, signature = token_text.split(".")
    forged = tmp_path / "forged.jws"
    forged.write_text(f"{head}.{body[:-2]}AA.{signature}")
    refused = _mmgen("receipt", "verify", str(forged), env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "INVALID" in refused.stdout

    shown = _mmgen("privacy", "show", erasure["request_id"], "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "verified"
    listed = _mmgen("privacy", "list", "--status", "verified", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert erasure["request_id"] in {r["request_id"] for r in json.loads(listed.stdout)}


def test_a_hold_keeps_its_category_until_released(journey_stack: Stack) -> None:
    s = journey_stack
    officer = compliance_officer_sync(s).token
    subject, _email, _password, token = _person(s)
    _grant_marketing(s, token)
    placed = httpx.post(
        f"{s.url('retention')}/retention/holds",
        json={
            "subject_id": subject,
            "categories": ["consent"],
            "legal_basis": "proof of consent kept while a complaint is open",
            "owner": "dpo",
        },
        headers=_bearer(officer, **LEGAL),
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()

    erasure = _file(s, token, "erasure")
    partial = _poll(lambda: _request(s, officer, erasure["request_id"]),
                    lambda r: r["status"] == "partially_completed", VERIFIED_WITHIN_S,
                    "partially completed")  # fmt: skip
    assert [(h["category"], h["hold_id"]) for h in partial["held"]] == [
        ("consent", hold["hold_id"])
    ]
    kept = _footprints(s, subject)["consent"]
    assert kept["categories"]["consent"]["records"] >= 1

    released = httpx.delete(
        f"{s.url('retention')}/retention/holds/{hold['hold_id']}",
        headers=_bearer(officer, **LEGAL),
        timeout=30,
    )
    assert released.status_code == 200, released.text
    done = _poll(lambda: _request(s, officer, erasure["request_id"]),
                 lambda r: r["status"] == "verified", VERIFIED_WITHIN_S, "verified")  # fmt: skip
    assert done["held"] == []
    assert _footprints(s, subject)["consent"]["readable_personal_fields"] == 0
    assert (
        _footprints(s, subject)["consent"]["categories"].get("consent", {}).get("records", 0) == 0
    )


def test_a_stopped_service_is_shown_waiting_and_answers_once_back(journey_stack: Stack) -> None:
    s = journey_stack
    officer = compliance_officer_sync(s).token
    subject, _email, _password, token = _person(s)
    # Retention has identity's signing keys, as a running system has (the test alone, or first
    # on a fresh stack, would otherwise find them out of reach with identity stopped).
    listed = httpx.get(
        f"{s.url('retention')}/privacy-requests", headers=_bearer(officer, **LEGAL), timeout=10
    )
    assert listed.status_code == 200, listed.text
    s.stop("identity")
    try:
        erasure = _file(s, token, "erasure")
        waiting = _poll(
            lambda: _request(s, officer, erasure["request_id"]),
            lambda r: sorted(r["acknowledgements"]) == ["consent", "retention"],
            VERIFIED_WITHIN_S,
            "consent's and retention's answers",
        )
        assert waiting["status"] == "in_progress"
        states = {p["service"]: p["state"] for p in waiting["progress"]}
        assert states["identity"] in ("pending", "to_retry"), waiting["progress"]
        assert "identity" not in waiting["acknowledgements"]
    finally:
        s.start("identity")
    done = _poll(lambda: _request(s, officer, erasure["request_id"]),
                 lambda r: r["status"] == "verified", 60, "verified after the restart")  # fmt: skip
    assert sorted(done["acknowledgements"]) == sorted(SERVICES)
    assert _footprints(s, subject)["identity"]["readable_personal_fields"] == 0


def _readable(footprint: dict[str, Any]) -> int:
    return int(footprint["readable_personal_fields"])

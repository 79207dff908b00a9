"""`mmgen up --demo` and `mmgen demo` against real processes: the demo accounts sign in, the
audit log holds what the demo did, `mmgen audit verify` accepts it, and a second run adds
nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from mmgen.cli import demo, demo_services

from ..conftest import MMGEN

pytestmark = pytest.mark.slow

# What one seeding leaves in the audit log, as (event type, subject, actor, purpose) with
# accounts named by their demo key (None: no subject / the system).
EXPECTED: Counter[tuple[str, str | None, str | None, str | None]] = Counter(
    {
        ("identity.UserRegistered", "admin", None, None): 1,  # by the admin-cli service
        ("identity.UserRegistered", "staff", "admin", None): 1,
        ("identity.UserRegistered", "compliance", "admin", None): 1,
        **{
            ("identity.UserRegistered", key, key, None): 1
            for key in (
                "client.acme",
                "client.northwind",
                "creator.mia",
                "creator.leo",
                "creator.zoe",
            )
        },
        ("identity.AccessDenied", "client.acme", "staff", None): 1,
        ("identity.UserRead", "creator.mia", "staff", "support"): 1,
        ("consent.PolicyPublished", None, "admin", None): 1,
        ("consent.ConsentGranted", "creator.mia", "creator.mia", None): 2,
        ("consent.ConsentGranted", "creator.leo", "creator.leo", None): 1,
        ("consent.ConsentWithdrawn", "creator.leo", "creator.leo", None): 1,
        ("consent.ConsentGranted", "creator.zoe", "creator.zoe", None): 1,
        ("consent.TrackingEventAccepted", "creator.zoe", "creator.zoe", None): 1,
        ("consent.ConsentGranted", "client.acme", "client.acme", None): 1,
        ("consent.ConsentWithdrawn", "client.acme", "client.acme", None): 1,
        ("consent.ConsentRecordsRead", "creator.mia", "staff", "support"): 1,
    }
)


def words(text: str) -> str:
    return " ".join(text.split())


class Audit:
    """The audit log as compliance staff query it over HTTP."""

    def __init__(self, consent_url: str, token: str, names: dict[str, str]) -> None:
        self.client = httpx.Client(
            base_url=consent_url,
            headers={"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"},
            timeout=30,
        )
        self.names = names  # user id → demo key

    def entries(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.client.get("/audit/entries", params=params)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return items

    def demo_entries(self) -> Counter[tuple[str, str | None, str | None, str | None]]:
        """Entries about or by demo accounts (actor None when a service or the system acted)."""
        seen: Counter[tuple[str, str | None, str | None, str | None]] = Counter()
        for entry in self.entries():
            subject = self.names.get(entry["subject_id"] or "")
            actor = self.names.get(entry["actor_id"] or "")
            if subject is None and actor is None:
                continue
            seen[(entry["event_type"], subject, actor, entry["purpose"])] += 1
        return seen

    def wait_for(self, wanted: Counter[Any], timeout: float = 60) -> Counter[Any]:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.demo_entries()
            if all(seen[key] >= n for key, n in wanted.items()) or time.monotonic() > deadline:
                return seen
            time.sleep(0.5)


def sign_in(state_dir: Any, key: str) -> str:
    """As `mmgen demo token` does: the stored password, and a TOTP code from the stored secret
    for admin, staff and compliance (the used steps are kept in the accounts file)."""
    return demo.access_token(state_dir, key)


def without_used_steps(accounts: dict[str, Any]) -> dict[str, Any]:
    """The accounts minus the TOTP steps used so far (every sign-in with a code adds one)."""
    return {
        key: {k: v for k, v in record.items() if k != "totp_used_steps"}
        for key, record in accounts.items()
    }


class ServicesSeeded:
    """What the demo leaves in profiles, projects and retention, read through their APIs."""

    def __init__(self, ports: dict[str, int], tokens: dict[str, str]) -> None:
        self.url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.tokens = tokens

    def get(self, service: str, path: str, as_: str, **params: Any) -> Any:
        response = httpx.get(
            self.url[service] + path,
            params=params,
            headers={
                "Authorization": f"Bearer {self.tokens[as_]}",
                **({"X-Purpose": "legal_compliance"} if as_ == "compliance" else {}),
            },
            timeout=30,
        )
        assert response.status_code == 200, f"{service} {path}: {response.text}"
        return response.json()

    def check(self) -> None:
        if not {"profiles", "projects", "retention"} <= set(self.url):
            return
        cards = self.get("profiles", "/profiles", "client.acme", city="Milan")["items"]
        assert [c["display_name"] for c in cards] == ["Mia Rossi"]
        mia = cards[0]["user_id"]
        profile = self.get("profiles", f"/profiles/{mia}", "client.acme")
        assert profile["revealed"] and profile["sensitive"]["phone"] == "+39 02 5550 1234"
        projects = self.get("projects", "/projects", "client.acme")["items"]
        assert [p["title"] for p in projects] == [demo_services.PROJECT_TITLE]
        project = projects[0]["project_id"]
        messages = self.get("projects", f"/projects/{project}/messages", "creator.mia")
        assert len(messages["items"]) == len(demo_services.MESSAGES)
        files = self.get("projects", f"/projects/{project}/files", "creator.leo")["items"]
        assert [f["filename"] for f in files] == ["moodboard.png"]
        zoe = self.get("identity", "/users/me", "creator.zoe")["user_id"]
        requests = self.get("retention", "/privacy-requests", "compliance", limit=100)["items"]
        assert [r["type"] for r in requests if r["subject_id"] == zoe] == ["access"]


def test_demo_data_set_signs_in_fills_the_audit_log_and_seeds_once(cli) -> None:
    if not {"identity", "consent"} <= set(cli.service_ports):
        pytest.skip("the demo data set needs identity and consent")
    # Service ports through the environment variable alone (no --port).
    env = {
        **os.environ,
        "MMGEN_SERVICE_PORTS": " ".join(f"{k}={v}" for k, v in cli.service_ports.items()),
    }
    argv = [
        MMGEN, "up", "--detach", "--demo", "--state-dir", str(cli.state_dir),
        "--broker-port", str(cli.broker_port), "--database-port", str(cli.database_port),
        "--mail-port", str(cli.mail_port), "--ready-timeout", "60",
    ]  # fmt: skip
    up = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    identity = f"http://127.0.0.1:{cli.service_ports['identity']}"
    consent = f"http://127.0.0.1:{cli.service_ports['consent']}"
    assert f"127.0.0.1:{cli.service_ports['consent']}" in up.stdout

    # The passwords: generated, kept only in the state folder (0600), printed for a person.
    accounts_file = cli.state_dir / "demo" / "accounts.json"
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    accounts = json.loads(accounts_file.read_text())["accounts"]
    assert set(accounts) == {spec.key for spec in demo.ACCOUNTS}
    passwords = [a["password"] for a in accounts.values()]
    assert len(set(passwords)) == len(passwords) and all(len(p) >= 15 for p in passwords)
    for record in accounts.values():
        line = next(row for row in up.stdout.splitlines() if record["email"] in row)
        assert record["password"] in line.split() and record["role"] in line.split()
    # Admin, staff and compliance enrolled TOTP; the secret is kept beside the password.
    for key in ("admin", "staff", "compliance"):
        secret = accounts[key]["totp_secret"]
        assert len(accounts[key]["recovery_codes"]) == 10
        line = next(row for row in up.stdout.splitlines() if accounts[key]["email"] in row)
        assert secret in line.split()
    assert not any("totp_secret" in accounts[key] for key in accounts if "." in key)

    # Every account signs in with what was printed and has the role it was shown with.
    names: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for key, record in accounts.items():
        tokens[key] = sign_in(cli.state_dir, key)
        me = httpx.get(
            f"{identity}/users/me", headers={"Authorization": f"Bearer {tokens[key]}"}, timeout=30
        ).json()
        assert (me["role"], me["email"], me["user_id"]) == (
            record["role"],
            record["email"],
            record["user_id"],
        )
        names[me["user_id"]] = key
    leo = httpx.get(
        f"{consent}/consents/me", headers={"Authorization": f"Bearer {tokens['creator.leo']}"}
    ).json()
    assert [(c["purpose"], c["granted"]) for c in leo["items"]] == [("marketing.email", False)]

    seeded = ServicesSeeded(cli.service_ports, tokens)
    seeded.check()

    # The audit log holds what the demo did, with actors and purposes.
    audit = Audit(consent, tokens["compliance"], names)
    first = audit.wait_for(EXPECTED)
    assert {k: first[k] for k in EXPECTED} == dict(EXPECTED), first

    # A compliance officer verifies it with the pinned key and a compliance token.
    token = subprocess.run(
        [MMGEN, "demo", "token", "compliance", "--state-dir", str(cli.state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    verified = subprocess.run(
        [MMGEN, "audit", "verify", "--public-key", f"@{cli.state_dir}/demo/audit-public-key.txt"],
        env={**os.environ, "MMGEN_AUDIT_URL": consent, "MMGEN_AUDIT_TOKEN": token.stdout.strip()},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID" in verified.stdout
    # The local witness cosigned the head the demo waited for; its key is pinned too, and
    # the command printed for the officer requires its cosignature.
    witness_key = cli.state_dir / "demo" / "witness-public-key.txt"
    assert f"--witness-key @{witness_key} --quorum 1" in words(up.stdout)
    witnessed = subprocess.run(
        [MMGEN, "audit", "verify", "--public-key", f"@{cli.state_dir}/demo/audit-public-key.txt",
         "--witness-key", f"@{witness_key}", "--quorum", "1"],
        env={**os.environ, "MMGEN_AUDIT_URL": consent, "MMGEN_AUDIT_TOKEN": token.stdout.strip(),
             "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert witnessed.returncode == 0, witnessed.stdout + witnessed.stderr
    assert "cosigned by 1 pinned witness(es): mmgen.local/witness" in words(witnessed.stdout)

    # Again: nothing fails, the same accounts and passwords, nothing new in the log.
    again = cli.run("demo", timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert without_used_steps(json.loads(accounts_file.read_text())["accounts"]) == (
        without_used_steps(accounts)
    )
    for record in accounts.values():
        assert record["password"] in again.stdout
    assert "created" not in again.stderr and "granted" not in again.stderr
    assert "written" not in again.stderr
    seeded.check()  # one project, the same messages and file: nothing seeded twice
    # A read made after the second run, once it is in the log, shows the log has caught up
    # with everything before it (per subject, events keep their order).
    mia = accounts["creator.mia"]["user_id"]
    for url in (f"{identity}/users/{mia}", f"{consent}/consents/{mia}"):
        response = httpx.get(
            url,
            headers={"Authorization": f"Bearer {tokens['staff']}", "X-Purpose": "security"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    marks = Counter(
        {
            ("identity.UserRead", "creator.mia", "staff", "security"): 1,
            ("consent.ConsentRecordsRead", "creator.mia", "staff", "security"): 1,
        }
    )
    second = audit.wait_for(marks)
    assert all(second[k] == 1 for k in marks), second
    assert {k: second[k] for k in EXPECTED} == dict(EXPECTED), "the second run added entries"


def test_demo_without_a_running_stack_says_what_to_do(cli) -> None:
    result = cli.run("demo", timeout=60)
    assert result.returncode == 1
    assert "mmgen up --demo" in words(result.stderr)


def test_demo_needs_the_services(cli) -> None:
    result = cli.run("up", "--detach", "--no-services", "--demo", timeout=60)
    assert result.returncode == 2
    assert "--demo" in result.stderr
    assert not (cli.state_dir / "stack.json").exists()

"""The credential life cycle end to end, against the running services and the local SMTP sink:
email verification, password reset and TOTP enrolment work through mail the sink received (read
with `mmgen mail`), a token got before the second factor was switched on stops working, and a
staff account without a second factor reaches no personal data at another service (403 there,
recorded in that service's own store as a refusal of that caller).

What is checked comes from outside the flows under test: the mail from the sink's files, the
refusal from projects' event store (read-only).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from pymongo import MongoClient

from mmgen.localstack.mailsink import read_messages
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform.totp import Authenticator
from tests import people
from tests.officers import staff_member_sync

MMGEN = str(Path(sys.executable).with_name("mmgen"))
DEADLINE_S = 30.0


def _mmgen_mail(mail_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [MMGEN, "mail", *args, "--dir", str(mail_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _mailed_token(mail_dir: Path, to: str, subject: str) -> str:
    """The token of the newest mail to `to` about `subject`, as `mmgen mail` shows it."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        listed = json.loads(_mmgen_mail(mail_dir, "list", "--to", to, "--json"))
        matching = [m for m in listed if subject in m["subject"]]
        if matching:
            break
        assert time.monotonic() < deadline, f"no mail {subject!r} to {to}: {listed}"
        time.sleep(0.2)
    shown = json.loads(_mmgen_mail(mail_dir, "show", matching[-1]["id"], "--json"))
    found = re.search(r"^token: (\S+)", shown["text"], re.MULTILINE)
    assert found is not None, shown["text"]
    return found.group(1)


def _amr(token: str) -> list[str]:
    return list(jwt.decode(token, options={"verify_signature": False}).get("amr", []))


def test_verification_reset_and_totp_work_through_the_local_mail_sink(system: Any) -> None:
    identity = system.url("identity")
    mail_dir: Path = system.mail_dir
    email = f"journey-{secrets.token_hex(4)}@example.test"
    password = secrets.token_urlsafe(18)
    body = {"email": email, "password": password, "name": "Jo Journey", "role": "client"}
    with httpx.Client(timeout=15) as http:
        # --- registration: the same answer for a taken address, whose owner is told ----------
        first = http.post(f"{identity}/auth/register", json=body)
        again = http.post(f"{identity}/auth/register", json={**body, "name": "Mallory"})
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        token = people.sign_in_sync(identity, email, password)
        auth = people.bearer(token)
        assert http.get(f"{identity}/users/me", headers=auth).json()["email_verified"] is False

        # --- email verification through the mailed token ---------------------------------------
        verify = _mailed_token(mail_dir, email, "verify your email")
        assert http.post(f"{identity}/auth/verify-email", json={"token": verify}).status_code == 204
        assert http.get(f"{identity}/users/me", headers=auth).json()["email_verified"] is True
        notices = [m for m in read_messages(mail_dir, to=email) if "tried to register" in m.subject]
        assert len(notices) == 1

        # --- password reset through the mailed token --------------------------------------------
        asked = http.post(f"{identity}/auth/password-reset", json={"email": email})
        assert asked.status_code == 202
        reset = _mailed_token(mail_dir, email, "reset your password")
        new_password = secrets.token_urlsafe(18)
        done = http.post(
            f"{identity}/auth/password-reset/confirm",
            json={"token": reset, "new_password": new_password},
        )
        assert done.status_code == 204, done.text
        old = http.post(f"{identity}/auth/token", json={"email": email, "password": password})
        assert old.status_code == 401
        token = people.sign_in_sync(identity, email, new_password)
        auth = people.bearer(token)

        # --- TOTP enrolment, then sign-in with a code ------------------------------------------
        enrolled = http.post(
            f"{identity}/users/me/mfa/totp", headers=auth, json={"current_password": new_password}
        )
        assert enrolled.status_code == 201, enrolled.text
        app = Authenticator(enrolled.json()["secret"])
        confirmed = http.post(
            f"{identity}/users/me/mfa/totp/confirm", headers=auth, json={"code": app.code()}
        )
        assert confirmed.status_code == 204, confirmed.text
        credentials = {"email": email, "password": new_password}
        missing = http.post(f"{identity}/auth/token", json=credentials)
        assert missing.status_code == 401 and missing.json()["code"] == "mfa_required"
        signed = http.post(f"{identity}/auth/token", json={**credentials, "totp": app.code()})
        assert signed.status_code == 200, signed.text
        fresh = signed.json()["access_token"]
        assert _amr(fresh) == ["pwd", "otp"]
        # The token got without the code is void: at identity at once, at projects as soon as
        # it has read identity's TotpActivated. The one got with the code works at both.
        assert http.get(f"{identity}/users/me", headers=auth).status_code == 401
        projects = f"{system.url('projects')}/projects"
        deadline = time.monotonic() + DEADLINE_S
        while http.get(projects, headers=auth).status_code != 401:
            assert time.monotonic() < deadline, "projects still takes the token from before"
            time.sleep(0.2)
        for url in (f"{identity}/users/me", projects):
            assert http.get(url, headers=people.bearer(fresh)).status_code == 200


def test_a_staff_account_without_mfa_reaches_no_personal_data_elsewhere(
    system: Any, infra: Infra
) -> None:
    identity, projects = system.url("identity"), system.url("projects")
    admin = people.sign_in_sync(identity, system.admin_email, system.admin_password)
    assert _amr(admin) == ["pwd", "otp"]
    staff = staff_member_sync(identity, admin, "staff", name="Sam Staff", second_factor=False)
    assert _amr(staff.token) == ["pwd"]
    with httpx.Client(timeout=15) as http:
        headers = people.bearer(staff.token, **{"X-Purpose": "support"})
        refused = http.get(f"{projects}/projects", headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "mfa_required"
        assert refused.headers["content-type"].startswith("application/problem+json")
        # identity too refuses it everything but enrolling a second factor.
        assert http.get(f"{identity}/users/me", headers=headers).status_code == 403

    def refusals() -> list[dict[str, Any]]:
        with MongoClient(infra.mongo_uri, directConnection=True) as mongo:
            found: list[dict[str, Any]] = list(
                mongo[system.database("projects")]["events"].find(
                    {"event_type": "projects.AccessDenied", "actor.id": staff.user_id}
                )
            )
        return found

    deadline = time.monotonic() + DEADLINE_S
    while not (found := refusals()):
        assert time.monotonic() < deadline, "the refusal was not recorded by projects"
        time.sleep(0.2)
    [denial] = found
    assert denial["data"]["code"] == "mfa-required" and denial["data"]["status"] == 403
    assert denial["actor"] == {"id": staff.user_id, "role": "staff"}

"""Issue 10, acceptance: the master key rotated while the whole stack runs.

Every service of the workspace runs as its own process. People write personal data into each
one (identity: accounts; consent: decisions; profiles: a profile with sensitive fields;
projects: a project and a message; retention: a rectification request). Then, as an operator
would (the procedure `mmgen admin rotate-master-key --help` states):
1. every service restarts with a new master key, the old one under `<SERVICE>_MASTER_KEYS_RETIRED`;
2. `mmgen admin rotate-master-key` re-wraps every data key while the stack runs and takes
   writes;
3. every service restarts again with the new key only: the old one is gone from settings.
Afterwards every event of every service's store decrypts under the new key alone (checked
here with a keystore that holds nothing else), the services show the data written before
and during the rotation, and every access token issued before the rotation still verifies at
every service (identity's token-signing keys were wrapped under the old master key too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pymongo import AsyncMongoClient, MongoClient

from mmgen.cli import stack
from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import Envelope
from mmgen.events.erased import Erased
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra, retry_on_port_clash, unique_name
from mmgen.platform.http import service_client
from tests import people
from tests.officers import new_password, publish_policy

MMGEN = str(Path(sys.executable).with_name("mmgen"))
KEYED = ("identity", "consent", "profiles", "projects", "retention")
"""The services with a master key (the witness keeps none)."""
WAIT_S = 60.0
T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while True:
        result = await probe()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s; last {result!r}"
        await asyncio.sleep(0.2)


@dataclass
class RestartableStack:
    config: stack.StackConfig
    services: list[stack.ServiceEntry]
    components: list[stack.Component]
    admin_email: str
    admin_password: str

    def url(self, service: str) -> str:
        return self.config.service_url(service)

    def database(self, service: str) -> str:
        return self.config.database_prefix + service

    def restart(self, env: dict[str, str]) -> None:
        """Stop every service, then start them all again (same ports) with `env` added."""
        stack.stop_components(self.components)
        self.config.extra_env.update(env)
        self.components = stack.start_services(self.config, self.services)

    def master_key(self, service: str) -> str:
        """The service's master key as `mmgen up` generated it (development secrets)."""
        path = self.config.state_dir / "secrets" / f"{service}.json"
        return str(json.loads(path.read_text())["master_key"])


@pytest.fixture
def whole_stack(infra: Infra, tmp_path: Path) -> Iterator[RestartableStack]:
    services = stack.discover_services()
    assert {s.name for s in services} >= set(KEYED), "every keyed service must be installed"
    admin = stack.BootstrapAdmin.fresh()
    config = stack.StackConfig(
        state_dir=tmp_path,
        topic_prefix=unique_name("mk") + ".",
        database_prefix=unique_name("mk_") + "_",
        external_mongo_uri=infra.mongo_uri,
        external_kafka_bootstrap=infra.kafka_bootstrap,
        ready_timeout=90.0,
        extra_env={
            **admin.env(),
            "RETENTION_SERVICES": json.dumps([s.name for s in services if s.name in KEYED]),
        },
    )

    def start() -> list[stack.Component]:
        config.service_ports = {s.name: free_port() for s in services}
        return stack.start_services(config, services)

    running = RestartableStack(
        config, services, retry_on_port_clash(start), admin.email, admin.password
    )
    try:
        yield running
    finally:
        stack.stop_components(running.components)
        with MongoClient(infra.mongo_uri) as mongo:
            for service in services:
                mongo.drop_database(running.database(service.name))


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def default_key_id(service: str) -> str:
    """The key id a service's settings give its master key by default."""
    from mmgen.consent.settings import ConsentSettings
    from mmgen.identity.settings import IdentitySettings
    from mmgen.profiles.settings import ProfilesSettings
    from mmgen.projects.settings import ProjectsSettings
    from mmgen.retention.settings import RetentionSettings

    classes: dict[str, Any] = {
        "identity": IdentitySettings,
        "consent": ConsentSettings,
        "profiles": ProfilesSettings,
        "projects": ProjectsSettings,
        "retention": RetentionSettings,
    }
    return str(classes[service].model_fields["master_key_id"].default)


async def undecryptable(db: Any, keyring: MasterKeyring) -> tuple[int, list[str]]:
    """Every event with a personal part, decrypted with a keystore holding only `keyring`:
    (events decrypted, failures)."""
    keystore = MongoKeystore(db, keyring, cache_ttl_seconds=0.0)
    cipher = PersonalDataCipher(keystore)
    done, failures = 0, []
    async for doc in db["events"].find({"pii": {"$ne": None}}):
        envelope = Envelope.from_document(doc)
        if envelope.pii is None:
            continue
        try:
            plain = await cipher.decrypt(envelope.pii, envelope.event_id)
        except Exception as exc:  # noqa: BLE001 - each failure is reported by name
            failures.append(f"{envelope.event_type} {envelope.event_id}: {exc!r}")
            continue
        if isinstance(plain, Erased):
            failures.append(f"{envelope.event_type} {envelope.event_id}: reads as erased")
        done += 1
    return done, failures


async def test_the_master_key_rotates_under_a_running_stack_and_nothing_is_lost(
    whole_stack: RestartableStack, infra: Infra
) -> None:
    s = whole_stack
    identity, consent, profiles, projects, retention = (s.url(n) for n in KEYED)
    tag = secrets.token_hex(4)
    phone = f"+33 6 {secrets.randbelow(90) + 10} 11 22 33"
    async with service_client(30.0) as http:

        async def token(email: str, password: str) -> str:
            return await people.sign_in(http, identity, email, password)

        async def register(role: str) -> tuple[str, str, str]:
            email, password = f"{role}-{tag}@example.test", new_password()
            body = {"email": email, "password": password, "name": f"{role} {tag}", "role": role}
            user_id, _ = await people.register(http, identity, body)
            return user_id, email, password

        # --- personal data in every service, under the first master keys ---------------------
        admin = await token(s.admin_email, s.admin_password)
        version = f"mk-{tag}"
        await publish_policy(http, consent, admin, version, "Rotation test policy.")
        creator_id, creator_email, creator_password = await register("creator")
        client_id, client_email, client_password = await register("client")
        creator = await token(creator_email, creator_password)
        client = await token(client_email, client_password)
        response = await http.patch(
            f"{identity}/users/me", json={"phone": phone}, headers=bearer(creator)
        )
        assert response.status_code == 200, response.text
        response = await http.put(
            f"{consent}/consents/me/profile.sensitive_sharing",
            headers=bearer(creator),
            json={"granted": True, "policy_version": version},
        )
        assert response.status_code == 200, response.text
        profile = {
            "display_name": f"Mia {tag}",
            "category": "model",
            "bio": "Editorial model.",
            "skills": ["Runway"],
            "city": "Lyon",
            "languages": ["fr"],
            "sensitive": {"phone": phone, "email": f"mia-{tag}@example.org"},
        }
        response = await http.put(f"{profiles}/profiles/me", headers=bearer(creator), json=profile)
        assert response.status_code == 200, response.text
        made = await http.post(
            f"{projects}/projects",
            json={"title": f"Launch {tag}", "requirements": "Two hosts"},
            headers=bearer(client),
        )
        assert made.status_code == 201, made.text
        project_id = made.json()["project_id"]
        before_text = f"Before the rotation, code {tag}"
        posted = await http.post(
            f"{projects}/projects/{project_id}/messages",
            json={"text": before_text},
            headers=bearer(client),
        )
        assert posted.status_code == 201, posted.text
        filed = await http.post(
            f"{retention}/privacy-requests",
            json={"type": "rectification", "details": f"My phone is {phone}, not the old one"},
            headers=bearer(creator),
        )
        assert filed.status_code in (200, 201), filed.text
        request_id = filed.json()["request_id"]

        # --- 1. restart with new master keys, the old ones retired ---------------------------
        old = {n: (default_key_id(n), s.master_key(n)) for n in KEYED}
        new = {
            n: (f"{n}-mk-rotated", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            for n in KEYED
        }
        env: dict[str, str] = {}
        for n in KEYED:
            prefix = n.upper()
            env[f"{prefix}_MASTER_KEY"] = new[n][1]
            env[f"{prefix}_MASTER_KEY_ID"] = new[n][0]
            env[f"{prefix}_MASTER_KEYS_RETIRED"] = json.dumps({old[n][0]: old[n][1]})
        await asyncio.to_thread(s.restart, env)

        # --- 2. re-wrap every data key while the stack runs and takes writes -----------------
        during_text = f"During the rotation, code {tag}"
        posted = await http.post(
            f"{projects}/projects/{project_id}/messages",
            json={"text": during_text},
            headers=bearer(client),
        )
        assert posted.status_code == 201, posted.text
        rotated = await asyncio.to_thread(
            subprocess.run,
            [
                MMGEN,
                "admin",
                "rotate-master-key",
                *[arg for n in KEYED for arg in ("--service-url", s.url(n))],
                "--state-dir",
                str(s.config.state_dir),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        for n in KEYED:
            assert f"under {new[n][0]}" in rotated.stdout, rotated.stdout

        # --- 3. restart with the new keys only ------------------------------------------------
        await asyncio.to_thread(
            s.restart, {f"{n.upper()}_MASTER_KEYS_RETIRED": "{}" for n in KEYED}
        )

        # Every event of every store decrypts under the new key alone.
        mongo: Any = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
        try:
            for n in KEYED:
                keyring = MasterKeyring(MasterKey(new[n][0], base64.urlsafe_b64decode(new[n][1])))
                done, failures = await undecryptable(mongo[s.database(n)], keyring)
                assert failures == [], f"{n}: {failures[:3]}"
                assert done > 0, f"{n}: no event with personal data to check"
        finally:
            await mongo.close()

        # Tokens issued before the rotation verify everywhere, and the data reads.
        me = await http.get(f"{identity}/users/me", headers=bearer(creator))
        assert me.status_code == 200 and me.json()["phone"] == phone, me.text
        mine = await http.get(f"{consent}/consents/me", headers=bearer(creator))
        assert mine.status_code == 200, mine.text
        granted = {c["purpose"]: c["granted"] for c in mine.json()["items"]}
        assert granted.get("profile.sensitive_sharing") is True, mine.text
        own = await http.get(f"{profiles}/profiles/me", headers=bearer(creator))
        assert own.status_code == 200, own.text
        assert own.json()["sensitive"]["phone"] == phone
        thread = await until(
            lambda: http.get(f"{projects}/projects/{project_id}/messages", headers=bearer(client)),
            lambda r: r.status_code == 200,
            "projects reads the thread",
        )
        texts = [m["text"] for m in thread.json()["items"]]  # newest first
        assert sorted(texts) == sorted([before_text, during_text]), texts
        request = await http.get(
            f"{retention}/privacy-requests/{request_id}", headers=bearer(creator)
        )
        assert request.status_code == 200, request.text
        assert request.json()["type"] == "rectification"
        # Identity signs new tokens with its re-wrapped key; other services verify them.
        fresh = await token(client_email, client_password)
        again = await http.get(f"{projects}/projects/{project_id}", headers=bearer(fresh))
        assert again.status_code == 200, again.text
        assert creator_id and client_id

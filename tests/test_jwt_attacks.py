"""Every JWT attack of the platform's list (`mmgen.runtime.jwt_attacks`, the one identity's API
test runs) against every running service, plus a token re-signed for the other services only:
each is the same generic 401 problem, while the valid token it was built from gets past.

The attacks whose only fault is a claim or a header (wrong `typ`, a ten-year lifetime, no
`jti`, ...) must be signed with identity's own key to test anything; an outsider cannot do
that, so the test reads the key the way identity does, from identity's database with the
master key the local stack keeps in its state folder (read only).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import SecretStr
from pymongo import AsyncMongoClient

from mmgen.identity.adapters.hashing import derive_key
from mmgen.identity.adapters.signing_keys import MongoSigningKeyRing
from mmgen.localstack.pytest_plugin import Infra
from mmgen.platform import key_bytes
from mmgen.platform.auth import SigningKey
from mmgen.platform.http import service_client
from mmgen.runtime.jwt_attacks import for_another_service, jwt_attacks
from tests import people
from tests.test_security_tokens import READS


async def identity_signing_key(system: Any, infra: Infra) -> SigningKey:
    """The key identity signs with now, read and unwrapped as identity itself does."""
    stored = json.loads((system.config.state_dir / "secrets" / "identity.json").read_text())
    wrapping = derive_key(key_bytes(SecretStr(stored["master_key"])), "signing-keys")
    mongo: Any = AsyncMongoClient(infra.mongo_uri, directConnection=True)
    try:
        ring = MongoSigningKeyRing(mongo[system.database("identity")], wrapping)
        await ring.reload()
        return await ring.signing_key()
    finally:
        await mongo.close()


async def test_every_attack_is_refused_by_every_service(system: Any, infra: Infra) -> None:
    identity = system.url("identity")
    services = [name for name in READS if system.has(name)]
    assert {"identity", "projects", "profiles", "consent", "retention"} <= set(services)
    async with service_client(15.0) as http:
        body = {
            "email": f"jwt-{secrets.token_hex(4)}@example.test",
            "password": secrets.token_urlsafe(18),
            "name": "Cleo Creator",
            "role": "creator",
        }
        _, valid = await people.register(http, identity, body)
        key = await identity_signing_key(system, infra)
        attacks = jwt_attacks(valid, key)
        assert len(attacks) >= 20

        for service in services:
            url = system.url(service) + READS[service]
            control = await http.get(url, headers=people.bearer(valid))
            assert control.status_code != 401, (service, control.text)
            tokens = {**attacks, "for the other services": for_another_service(valid, key, service)}
            for name, token in tokens.items():
                refused = await http.get(url, headers=people.bearer(token))
                assert refused.status_code == 401, (service, name, refused.text)
                assert refused.headers["content-type"].startswith("application/problem+json"), (
                    service,
                    name,
                )
                assert refused.headers["www-authenticate"].startswith("Bearer"), (service, name)
                problem = refused.json()
                # The same answer whatever the fault: the caller learns nothing more.
                assert problem["status"] == 401, (service, name)
                assert problem["detail"] == "the access token is invalid", (service, name)

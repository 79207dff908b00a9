"""A closed account's token is refused by a verifier in another process that learns it only from
`identity.events` (the `SubjectRevocations` every other service wires)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from services.identity.tests.identity_kit import Running

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRIPT = Path(__file__).with_name("verifier_process.py")
#: Longest wait for the verifier's answer (correctness, not speed): relay wake-up, consumer
#: lag and a group join on a loaded 2-core machine.
BOUND_S = 30.0


async def read_line(stream: asyncio.StreamReader, within_s: float) -> str:
    line = await asyncio.wait_for(stream.readline(), within_s)
    return line.decode().strip()


async def test_closed_account_is_refused_in_another_process(svc: Running, tmp_path: Path) -> None:
    user = await svc.user_with_token()
    jwks = (await svc.client.get("/.well-known/jwks.json")).json()
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "token").write_text(user["access_token"])
    database = f"t_verifier_{uuid.uuid4().hex[:10]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        svc.settings.kafka_bootstrap,
        svc.events_topic,
        svc.settings.mongo_uri,
        database,
        str(tmp_path / "jwks.json"),
        str(tmp_path / "token"),
        "90",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await read_line(proc.stdout, 60)
        assert first == "accepted", first  # the other process honours the token before...

        closed = await svc.client.request(
            "DELETE", "/users/me", headers=user["auth"], json={"current_password": user["password"]}
        )
        assert closed.status_code == 204
        second = await read_line(proc.stdout, BOUND_S)
        assert second == "revoked", second  # ...and refuses it once it read AccountClosed
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        # It learnt it from the event, and kept it in its own database.
        mongo: AsyncMongoClient = AsyncMongoClient(svc.settings.mongo_uri)
        try:
            doc = await mongo[database]["revoked_subjects"].find_one({"_id": user["user_id"]})
            assert doc is not None and doc["reason"] == "identity.AccountClosed"
        finally:
            await mongo.drop_database(database)
            await mongo.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

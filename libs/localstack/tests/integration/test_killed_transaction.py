"""A transaction whose client was killed stops blocking other writers within a bounded time.

A client killed with SIGKILL inside a transaction never commits or aborts it, and the server
keeps the documents it wrote locked: every other transaction writing them gets `WriteConflict`
and `with_transaction` retries it until the server reaps the orphan. SecantusDB reaps after its
transaction lifetime (60 s unless told otherwise, mongod's default too); the local stack starts
it with `TRANSACTION_LIFETIME_SECONDS` (`mmgen.localstack.database`). Measured here: a counter
`$inc` after a killed client's open `$inc` waits about that lifetime — not 60 s, and not less
(the orphan really held the document).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument

from mmgen.localstack.components import start_database
from mmgen.localstack.database import TRANSACTION_LIFETIME_SECONDS
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import Infra

#: Slack for the server's reaping and the retries of a loaded 2-core machine.
MARGIN_S = 6.0

OPEN_AND_HANG = """
import sys, time
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
counters = client[sys.argv[2]]["counters"]
session = client.start_session()
session.start_transaction()
counters.find_one_and_update({"_id": "p"}, {"$inc": {"seq": 1}}, session=session)
print("open", flush=True)
time.sleep(600)
"""


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[tuple[str, float]]:
    """A database of its own whose transactions live 3 s: the launcher passes the lifetime."""
    database = start_database(
        "127.0.0.1", free_port(), None, tmp_path / "database.log",
        sync_on_commit=False, transaction_lifetime_seconds=3.0,
    )  # fmt: skip
    try:
        yield database.extra["uri"], 3.0
    finally:
        database.stop()


@pytest.fixture
def session_database(infra: Infra) -> tuple[str, float]:
    """The session's database, started as `mmgen up` starts it (the default lifetime)."""
    if infra.backend != "local":
        pytest.skip("the transaction lifetime of a real MongoDB is its operator's setting")
    return infra.mongo_uri, TRANSACTION_LIFETIME_SECONDS


@pytest.mark.parametrize("where", ["short_lived", "session_database"])
async def test_a_killed_clients_transaction_blocks_a_counter_only_for_its_lifetime(
    where: str, request: pytest.FixtureRequest
) -> None:
    uri, lifetime = request.getfixturevalue(where)
    name = f"t_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    counters = client[name]["counters"]
    try:
        await counters.insert_one({"_id": "p", "seq": 0})
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_HANG, uri, name, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line.strip() == b"open"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            await child.wait()

        async def take(session: Any) -> Any:
            return await counters.find_one_and_update(
                {"_id": "p"}, {"$inc": {"seq": 1}},
                return_document=ReturnDocument.AFTER, session=session,
            )  # fmt: skip

        started = time.monotonic()
        async with client.start_session() as session:
            after = await session.with_transaction(take)
        waited = time.monotonic() - started

        assert after["seq"] == 1, "the killed client's increment was rolled back"
        assert lifetime - 1.5 <= waited <= lifetime + MARGIN_S, waited
    finally:
        await client.drop_database(name)
        await client.close()

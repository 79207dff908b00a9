"""The audit log hands out seqs from its head: its append commits with `majority` and its
reads use `majority`, as the commands sent to the real database show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from mmgen.consent.audit.store import MongoAuditStore


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append({"name": event.command_name, **event.command})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_appends_commit_and_reads_read_with_majority(
    mongo_uri: str, mongo_db: Any, item: Callable[..., dict[str, Any]]
) -> None:
    commands = Commands()
    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    try:
        store = MongoAuditStore(client[mongo_db.name])
        await store.ensure_indexes()
        commands.sent.clear()
        await store.append([item(producer_seq=1), item(producer_seq=2)])
        commits = [c for c in commands.sent if c["name"] == "commitTransaction"]
        assert [c["writeConcern"] for c in commits] == [{"w": "majority"}]
        assert commands.sent[0]["readConcern"] == {"level": "majority"}  # the head, in the txn

        commands.sent.clear()
        assert (await store.head()).size == 2
        assert [r["_id"] for r in await store.window(0, 2)] == [0, 1]
        await store.advance_cursor("audit.log", 2)
        assert await store.cursor("audit.log") == 2
        finds = [c for c in commands.sent if c["name"] == "find"]
        assert {c["find"] for c in finds} == {"audit_head", "audit_pages", "audit_cursors"}
        assert all(c["readConcern"] == {"level": "majority"} for c in finds), finds
        (update,) = [c for c in commands.sent if c["name"] == "update"]
        assert update["writeConcern"] == {"w": "majority"}
    finally:
        await client.close()

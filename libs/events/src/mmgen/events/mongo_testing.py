"""A record of the commands a MongoDB client sends, for tests that check what went on the wire.

Shipped with the kernel so every service's tests check read and write concerns the same way:
on the commands the driver sent to the real database, not on the objects that should have
sent them (`concerns.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, monitoring

MAJORITY_WRITE = {"w": "majority"}
MAJORITY_READ = {"level": "majority"}


class CommandLog(monitoring.CommandListener):
    """Every command started, as sent (`name` added)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append({"name": event.command_name, **event.command})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str, collection: str | None = None) -> list[dict[str, Any]]:
        """The commands `name` sent, to `collection` if given."""
        return [
            c
            for c in self.sent
            if c["name"] == name and (collection is None or c.get(name) == collection)
        ]

    def clear(self) -> None:
        self.sent.clear()


@asynccontextmanager
async def watched_database(mongo_uri: str, name: str) -> AsyncIterator[tuple[Any, CommandLog]]:
    """Database `name` through a client of its own whose every command is recorded."""
    commands = CommandLog()
    client: Any = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    try:
        yield client[name], commands
    finally:
        await client.close()


__all__ = ["MAJORITY_READ", "MAJORITY_WRITE", "CommandLog", "watched_database"]

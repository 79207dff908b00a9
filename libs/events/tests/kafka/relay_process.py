"""A relay in a process of its own, for the SIGKILL crash test (not a test module).

Usage: python relay_process.py MONGO_URI DB PRODUCER BOOTSTRAP TOPIC OWNER
Prints "ready" once connected, then relays until killed.
"""

from __future__ import annotations

import asyncio
import sys

from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.relay import Relay, RelaySettings


async def main(
    uri: str, db_name: str, producer: str, bootstrap: str, topic: str, owner: str
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri, tz_aware=True)
    db = client[db_name]
    store = MongoEventStore(db, producer)
    relay = Relay(
        store,
        db,
        bootstrap,
        topic,
        owner=owner,
        change_stream=store.events,
        settings=RelaySettings(window=500, idle_wait_s=0.2, hole_retry_s=0.05, lease_ttl_s=0.5),
        registry=CollectorRegistry(),
    )
    await relay.start()
    print("ready", flush=True)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))

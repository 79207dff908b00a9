"""Composition of the event kernel for one service: store, keystore, snapshots, mapper, repository.

A service's `bootstrap()` calls `mongo_kernel(...)` (no I/O: the service's lifespan later calls
`kernel.prepare()`, which creates the indexes), or `open_mongo_kernel(...)` to do both at once;
unit tests call `in_memory_kernel(...)` and get the same objects over fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.keys import InMemoryKeystore, Keystore, MasterKey, MasterKeyring
from mmgen.events.mapper import EventMapper, Transcoder
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.registry import EventRegistry
from mmgen.events.repository import EventSourcedRepository
from mmgen.events.snapshots import InMemorySnapshotStore, MongoSnapshotStore, SnapshotStore
from mmgen.events.store import EventStore, InMemoryEventStore


@dataclass
class EventKernel:
    """Everything a service needs to write and read its events."""

    store: EventStore
    keystore: Keystore
    snapshots: SnapshotStore
    mapper: EventMapper
    repository: EventSourcedRepository

    async def shred(self, owner: str, by: str | None = None) -> bool:
        """Crypto-shred an owner: key deleted, erased marker kept, caches and snapshots purged."""
        return await self.keystore.shred(owner, by=by)

    async def prepare(self) -> None:
        """Create what the adapters need (indexes), idempotently; nothing for in-memory fakes."""
        for part in (self.store, self.keystore, self.snapshots):
            ensure = getattr(part, "ensure_indexes", None)
            if ensure is not None:
                await ensure()

    async def close(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()


def _assemble(
    store: EventStore,
    keystore: Keystore,
    snapshots: SnapshotStore,
    registry: EventRegistry,
    producer: str,
    snapshot_every: int,
    transcoder: Transcoder | None,
) -> EventKernel:
    registry.check()
    mapper = EventMapper(registry, PersonalDataCipher(keystore), producer, transcoder)
    repository = EventSourcedRepository(
        store, mapper, snapshots=snapshots, snapshot_every=snapshot_every
    )
    return EventKernel(store, keystore, snapshots, mapper, repository)


def mongo_kernel(
    db: AsyncDatabase[Any],
    *,
    producer: str,
    registry: EventRegistry,
    keyring: MasterKeyring,
    collection_prefix: str = "events",
    keystore_collection: str = "keystore",
    key_cache_ttl_seconds: float = 30.0,
    snapshot_every: int = 100,
    transcoder: Transcoder | None = None,
) -> EventKernel:
    """The kernel on the service's own database, wired without I/O (`prepare()` makes indexes).

    Collection names match the adapters' defaults (`events`, `events_counters`, `keystore`,
    `events_snapshots`), so a service that wired the adapters by hand finds its data here.
    """
    store = MongoEventStore(db, producer, prefix=collection_prefix)
    keystore = MongoKeystore(
        db, keyring, collection=keystore_collection, cache_ttl_seconds=key_cache_ttl_seconds
    )
    snapshots = MongoSnapshotStore(db, keystore, collection=f"{collection_prefix}_snapshots")
    return _assemble(store, keystore, snapshots, registry, producer, snapshot_every, transcoder)


async def open_mongo_kernel(db: AsyncDatabase[Any], **options: Any) -> EventKernel:
    """`mongo_kernel(db, **options)` with its indexes created (idempotent)."""
    kernel = mongo_kernel(db, **options)
    await kernel.prepare()
    return kernel


def in_memory_kernel(
    *,
    producer: str,
    registry: EventRegistry,
    keyring: MasterKeyring | None = None,
    snapshot_every: int = 100,
) -> EventKernel:
    """The same kernel over in-memory fakes, for unit tests."""
    keystore = InMemoryKeystore(keyring or MasterKeyring(MasterKey.generate()))
    return _assemble(
        InMemoryEventStore(producer),
        keystore,
        InMemorySnapshotStore(keystore),
        registry,
        producer,
        snapshot_every,
        None,
    )

"""Optional aggregate snapshots, purged when an owner whose data they hold is shredded.

A snapshot records the owners whose (decrypted) personal data its state contains. The
keystore calls `delete_for_owner` on shred; `get` also refuses (and deletes) a snapshot that
names an erased owner, and `save` re-checks after writing, so a snapshot raced against a
shred in another process cannot outlive the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.events.envelope import normalize_time, utc_now
from mmgen.events.keys import Keystore


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state as of `version` of its stream."""

    stream_id: str
    version: int
    state: dict[str, Any]
    owners: tuple[str, ...] = ()
    taken_at: datetime = field(default_factory=utc_now)


@runtime_checkable
class SnapshotStore(Protocol):
    async def save(self, snapshot: Snapshot) -> None: ...

    async def get(self, stream_id: str) -> Snapshot | None: ...

    async def delete_for_owner(self, owner: str) -> None: ...


class _ErasureChecks:
    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore
        keystore.add_shred_listener(self.delete_for_owner)

    async def delete_for_owner(self, owner: str) -> None:
        raise NotImplementedError

    async def _any_erased(self, owners: Sequence[str]) -> bool:
        for owner in owners:
            if await self.keystore.is_erased(owner):
                return True
        return False


class InMemorySnapshotStore(_ErasureChecks):
    """Snapshots in a dict (unit tests)."""

    def __init__(self, keystore: Keystore) -> None:
        super().__init__(keystore)
        self._items: dict[str, Snapshot] = {}

    async def save(self, snapshot: Snapshot) -> None:
        self._items[snapshot.stream_id] = snapshot
        if await self._any_erased(snapshot.owners):
            self._items.pop(snapshot.stream_id, None)

    async def get(self, stream_id: str) -> Snapshot | None:
        snapshot = self._items.get(stream_id)
        if snapshot is not None and await self._any_erased(snapshot.owners):
            self._items.pop(stream_id, None)
            return None
        return snapshot

    async def delete_for_owner(self, owner: str) -> None:
        for stream_id in [s for s, snap in self._items.items() if owner in snap.owners]:
            del self._items[stream_id]


class MongoSnapshotStore(_ErasureChecks):
    """Snapshots in `<collection>` (`_id` = stream id, multikey index on `owners`)."""

    def __init__(
        self, db: AsyncDatabase[Any], keystore: Keystore, *, collection: str = "events_snapshots"
    ) -> None:
        super().__init__(keystore)
        self.snapshots = db[collection]

    async def ensure_indexes(self) -> None:
        await self.snapshots.create_index([("owners", ASCENDING)], name="owners")

    async def save(self, snapshot: Snapshot) -> None:
        await self.snapshots.replace_one(
            {"_id": snapshot.stream_id},
            {
                "version": snapshot.version,
                "state": snapshot.state,
                "owners": list(snapshot.owners),
                "taken_at": snapshot.taken_at,
            },
            upsert=True,
        )
        if await self._any_erased(snapshot.owners):
            await self.snapshots.delete_one({"_id": snapshot.stream_id})

    async def get(self, stream_id: str) -> Snapshot | None:
        doc = await self.snapshots.find_one({"_id": stream_id})
        if doc is None:
            return None
        owners = tuple(doc.get("owners", ()))
        if await self._any_erased(owners):
            await self.snapshots.delete_one({"_id": stream_id})
            return None
        return Snapshot(
            stream_id=stream_id,
            version=int(doc["version"]),
            state=dict(doc["state"]),
            owners=owners,
            taken_at=normalize_time(doc["taken_at"]),
        )

    async def delete_for_owner(self, owner: str) -> None:
        await self.snapshots.delete_many({"owners": owner})

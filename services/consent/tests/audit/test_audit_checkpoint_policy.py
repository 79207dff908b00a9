"""Tree heads are signed when N entries have gone by, or when T seconds have passed with new
entries — whichever comes first — and never for a tree that has not grown.

The checkpointer reads the log through a `WatchedStore`: every head it reads (once per turn of
its loop, once more when it signs) and every head it signs is noted, so a test waits for the
checkpointer to have demonstrably looked at the log before it states what was not signed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from mmgen.auditlog.checkpoint import NoteSigner, open_checkpoint
from mmgen.consent.audit.checkpoints import Checkpointer
from mmgen.consent.audit.store import CheckpointRecord, Head, MongoAuditStore

ORIGIN = "test.local/audit"


class WatchedStore(MongoAuditStore):
    """The checkpointer's store, noting what it read and signed, in order, with loop times."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.heads_read = 0
        self.started = asyncio.Event()
        #: ("signed", tree size, loop time) per head the checkpointer signed; tests add
        #: ("notified", size, time) so the order of both can be checked.
        self.timeline: list[tuple[str, int, float]] = []

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        latest = await super().latest_checkpoint()
        self.started.set()  # the checkpointer knows where the signed heads end
        return latest

    async def head(self) -> Head:
        head = await super().head()
        self.heads_read += 1
        return head

    async def save_checkpoint(self, record: CheckpointRecord) -> bool:
        self.timeline.append(("signed", record.tree_size, asyncio.get_running_loop().time()))
        return await super().save_checkpoint(record)

    def signed(self) -> list[int]:
        return [size for kind, size, _ in self.timeline if kind == "signed"]

    def notify(self, checkpointer: Checkpointer, size: int) -> None:
        """Tell the checkpointer the log grew to `size` (as the projector does), noted."""
        self.timeline.append(("notified", size, asyncio.get_running_loop().time()))
        checkpointer.notify(size)


async def append(store: MongoAuditStore, item: Callable[..., dict[str, Any]], n: int) -> int:
    start = (await store.head()).size + 1
    await store.append([item(producer_seq=s) for s in range(start, start + n)])
    return (await store.head()).size


async def signed_sizes(store: MongoAuditStore) -> set[int]:
    latest = await store.latest_checkpoint()
    if latest is None:
        return set()
    return {size for size in range(1, latest.tree_size + 1) if await store.checkpoint(size)}


@contextlib.asynccontextmanager
async def running_checkpointer(
    store: MongoAuditStore, *, every_entries: int, every_seconds: float
) -> AsyncIterator[tuple[Checkpointer, NoteSigner, WatchedStore, float]]:
    """A checkpointer running in the background with its own key on a `WatchedStore` of the
    same database; yields it once it has read where the signed heads end, with the loop time
    it started at. Stopped on exit."""
    signer = NoteSigner.generate(ORIGIN)
    watched = WatchedStore(store.db)
    checkpointer = Checkpointer(
        watched, signer, origin=ORIGIN, every_entries=every_entries, every_seconds=every_seconds
    )
    started_at = asyncio.get_running_loop().time()
    task = asyncio.create_task(checkpointer.run())
    try:
        await asyncio.wait_for(watched.started.wait(), timeout=10)
        yield checkpointer, signer, watched, started_at
    finally:
        await checkpointer.stop()
        await task


async def test_every_n_entries_signs_without_waiting_for_t(
    store: MongoAuditStore, item: Any, eventually: Any
) -> None:
    async with running_checkpointer(store, every_entries=5, every_seconds=3600) as (
        checkpointer,
        signer,
        watched,
        _,
    ):
        watched.notify(checkpointer, await append(store, item, 5))
        record = await eventually(lambda: store.checkpoint(5), timeout_s=5)
        checkpoint = open_checkpoint(record.note, signer.verifier())
        assert (checkpoint.size, checkpoint.root_hash) == (5, (await store.head()).root())
        # Three more: fewer than N since the last head and T is an hour away...
        watched.notify(checkpointer, await append(store, item, 3))
        # ...two more reach N: signed at once, and that head is the next one after 5.
        watched.notify(checkpointer, await append(store, item, 2))
        await eventually(lambda: store.checkpoint(10), timeout_s=5)
        assert await signed_sizes(store) == {5, 10}
        assert [(kind, size) for kind, size, _ in watched.timeline] == [
            ("notified", 5),
            ("signed", 5),
            ("notified", 8),
            ("notified", 10),
            ("signed", 10),
        ]


async def test_every_t_seconds_signs_a_grown_tree_below_n(
    store: MongoAuditStore, item: Any, eventually: Any
) -> None:
    every_seconds = 0.5
    async with running_checkpointer(store, every_entries=1000, every_seconds=every_seconds) as (
        checkpointer,
        signer,
        watched,
        started_at,
    ):
        watched.notify(checkpointer, await append(store, item, 3))  # far below N: only T signs
        record = await eventually(lambda: store.checkpoint(3), timeout_s=10)
        assert open_checkpoint(record.note, signer.verifier()).size == 3
        # Signed by T, not at the notification: T had passed since the checkpointer started.
        [(_, _, signed_at)] = [e for e in watched.timeline if e[0] == "signed"]
        assert signed_at - started_at >= every_seconds
        # A tree that does not grow gets no new head, however often T passes. Each turn of the
        # loop reads the head once (twice when it signs): five more reads mean at least two
        # whole turns after the head at 3, each with T passed since it, have ended.
        reads = watched.heads_read
        await eventually(lambda: watched.heads_read >= reads + 5, timeout_s=30)
        assert watched.signed() == [3]
        assert await signed_sizes(store) == {3}
        assert await store.checkpoint(3) == record

"""Tree heads are signed when N entries have gone by, or when T seconds have passed with new
entries — whichever comes first — and never for a tree that has not grown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from mmgen.auditlog.checkpoint import NoteSigner, open_checkpoint
from mmgen.consent.audit.checkpoints import Checkpointer
from mmgen.consent.audit.store import MongoAuditStore

ORIGIN = "test.local/audit"


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
) -> AsyncIterator[tuple[Checkpointer, NoteSigner]]:
    """A checkpointer running in the background with its own key, stopped on exit."""
    signer = NoteSigner.generate(ORIGIN)
    checkpointer = Checkpointer(
        store, signer, origin=ORIGIN, every_entries=every_entries, every_seconds=every_seconds
    )
    task = asyncio.create_task(checkpointer.run())
    await asyncio.sleep(0.2)  # let it read the latest head before the test appends
    try:
        yield checkpointer, signer
    finally:
        await checkpointer.stop()
        await task


async def test_every_n_entries_signs_without_waiting_for_t(
    store: MongoAuditStore, item: Any, eventually: Any
) -> None:
    async with running_checkpointer(store, every_entries=5, every_seconds=3600) as (
        checkpointer,
        signer,
    ):
        size = await append(store, item, 5)
        checkpointer.notify(size)
        record = await eventually(lambda: store.checkpoint(5), timeout_s=5)
        checkpoint = open_checkpoint(record.note, signer.verifier())
        assert (checkpoint.size, checkpoint.root_hash) == (5, (await store.head()).root())
        # Three more: fewer than N and T is an hour away, so no head is signed for them.
        size = await append(store, item, 3)
        checkpointer.notify(size)
        await asyncio.sleep(1.0)
        assert await store.checkpoint(8) is None
        assert (await store.latest_checkpoint()).tree_size == 5  # type: ignore[union-attr]
        # Two more reach N since the last head: signed at once.
        size = await append(store, item, 2)
        checkpointer.notify(size)
        await eventually(lambda: store.checkpoint(10), timeout_s=5)


async def test_every_t_seconds_signs_a_grown_tree_below_n(
    store: MongoAuditStore, item: Any, eventually: Any
) -> None:
    async with running_checkpointer(store, every_entries=1000, every_seconds=0.5) as (
        checkpointer,
        signer,
    ):
        size = await append(store, item, 3)
        checkpointer.notify(size)  # far below N: only T can sign it
        record = await eventually(lambda: store.checkpoint(3), timeout_s=5)
        assert open_checkpoint(record.note, signer.verifier()).size == 3
        # A tree that does not grow gets no new head, however long T passes.
        await asyncio.sleep(1.5)
        assert await signed_sizes(store) == {3}

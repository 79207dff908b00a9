"""The checkpointed tailer's contract over in-memory sources: nothing skipped at a hole, the
checkpoint saved after each run and resumed, fencing, error backoff, read-ahead, stop, notify."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mmgen.events.kafka_testing import wait_until
from mmgen.events.tailer import (
    MemoryCheckpoint,
    Tailer,
    TailerError,
    TailerFencedError,
    TailerMetrics,
)


class InMemoryLog:
    """A numbered log as a tail source: numbers can be hidden (a hole: given out, not yet
    visible), reads can be made to fail, and every read is recorded."""

    def __init__(self, count: int = 0, *, first: int = 1, max_window: int = 1_000) -> None:
        self.first = first
        self.items: list[int] = list(range(first, first + count))
        self.hidden: set[int] = set()
        self.max_window = max_window
        self.reads: list[tuple[int, int]] = []
        self.waits = 0
        self.fail_reads = 0
        self.wait_blocks = False
        self._appended = asyncio.Event()

    def append(self, count: int = 1) -> None:
        nxt = self.items[-1] + 1 if self.items else self.first
        self.items.extend(range(nxt, nxt + count))
        self._appended.set()

    def seq(self, item: int) -> int:
        return item

    async def read(self, start: int, end: int) -> Sequence[int]:
        assert end - start <= self.max_window
        self.reads.append((start, end))
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("source unreachable")
        await asyncio.sleep(0)  # a real read yields to the loop
        return [n for n in self.items if start <= n < end and n not in self.hidden]

    async def last(self) -> int:
        return self.items[-1] if self.items else self.first - 1

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109
        """Returns early on an append unless `wait_blocks` (then only `notify` wakes)."""
        self.waits += 1
        if self.wait_blocks:
            await asyncio.sleep(timeout)
            return
        self._appended.clear()
        if await self.last() > after:
            return
        try:
            await asyncio.wait_for(self._appended.wait(), timeout)
        except TimeoutError:
            return


class Sink:
    """Records what was applied; can fail its next calls."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail = 0

    @property
    def applied(self) -> list[int]:
        return [n for batch in self.batches for n in batch]

    async def __call__(self, items: Sequence[int]) -> None:
        await asyncio.sleep(0)  # a real sink yields (lets a read-ahead start meanwhile)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("sink refused")
        self.batches.append(list(items))


class InMemoryFencedCheckpoint(MemoryCheckpoint):
    """A checkpoint that another owner can take over: saves then answer False."""

    def __init__(self, start: int = 0) -> None:
        super().__init__(start)
        self.fenced = False

    async def save(self, seq: int) -> bool:
        if self.fenced:
            return False
        return await super().save(seq)


def tailer_for(source: InMemoryLog, sink: Sink, checkpoint: Any = None, **kw: Any) -> Tailer[int]:
    kw.setdefault("idle_wait_s", 0.05)
    kw.setdefault("hole_retry_s", 0.01)
    kw.setdefault("error_backoff_s", 0.01)
    kw.setdefault("max_error_backoff_s", 0.04)
    return Tailer("test", source, checkpoint or MemoryCheckpoint(), sink, **kw)


async def running(tailer: Tailer[int]) -> asyncio.Task[None]:
    task = asyncio.create_task(tailer.run())
    await wait_until(lambda: tailer.status.running, what="tailer running")
    return task


async def test_steps_apply_bounded_windows_and_save_each_run() -> None:
    source, sink, checkpoint = InMemoryLog(12), Sink(), MemoryCheckpoint()
    tailer = tailer_for(source, sink, checkpoint, window=5)
    assert [await tailer.step() for _ in range(4)] == [5, 5, 2, 0]
    assert sink.batches == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]
    assert checkpoint.value == 12 and tailer.status.checkpoint == 12
    assert tailer.status.applied == 12 and tailer.status.hole_at is None


async def test_window_is_bounded_by_the_source() -> None:
    tailer = tailer_for(InMemoryLog(max_window=7), Sink(), window=500)
    assert tailer.window == 7
    with pytest.raises(ValueError, match="window"):
        tailer_for(InMemoryLog(), Sink(), window=0)


async def test_a_hole_is_waited_for_never_skipped_and_passed_when_filled() -> None:
    source, sink = InMemoryLog(10), Sink()
    source.hidden = {4}
    tailer = tailer_for(source, sink)
    task = await running(tailer)
    try:
        await wait_until(lambda: tailer.status.hole_at == 4, what="hole noticed")
        reads = len(source.reads)
        await wait_until(lambda: len(source.reads) >= reads + 10, what="rounds at the hole")
        assert sink.applied == [1, 2, 3]
        assert tailer.status.checkpoint == 3 and tailer.status.hole_at == 4
        source.hidden = set()
        await wait_until(lambda: tailer.status.checkpoint == 10, what="hole filled")
        assert sink.applied == list(range(1, 11))
        assert tailer.status.hole_at is None
    finally:
        await tailer.stop()
        await task


async def test_an_empty_window_below_the_last_number_is_a_hole() -> None:
    source, sink = InMemoryLog(4), Sink()
    source.hidden = {4}  # 4 was given out (last() says so) but is not visible yet
    tailer = tailer_for(source, sink)
    assert await tailer.step() == 3
    assert tailer.status.hole_at is None  # the window had no gap: the end, as far as it knows
    assert await tailer.step() == 0
    assert tailer.status.hole_at == 4
    assert await tailer.step() == 0 and tailer.status.checkpoint == 3
    source.hidden = set()
    assert await tailer.step() == 1
    assert tailer.status.hole_at is None and sink.applied == [1, 2, 3, 4]


async def test_checkpoint_is_persisted_and_resumed_and_never_moves_back() -> None:
    source, checkpoint = InMemoryLog(7), MemoryCheckpoint()
    first = tailer_for(source, Sink(), checkpoint)
    while await first.step():
        pass
    assert checkpoint.value == 7
    source.append(3)
    sink = Sink()
    again = tailer_for(source, sink, checkpoint)
    assert await again.step() == 3
    assert sink.applied == [8, 9, 10]  # nothing twice
    assert await checkpoint.save(2) and checkpoint.value == 10


async def test_reset_replays_in_memory_without_moving_the_saved_checkpoint_back() -> None:
    source, sink, checkpoint = InMemoryLog(5), Sink(), MemoryCheckpoint()
    tailer = tailer_for(source, sink, checkpoint)
    await tailer.step()
    tailer.reset(0)
    assert await tailer.step() == 5
    assert sink.batches == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
    assert checkpoint.value == 5


async def test_zero_based_source() -> None:
    source, sink = InMemoryLog(3, first=0), Sink()
    tailer = tailer_for(source, sink, MemoryCheckpoint(-1), first_seq=0)
    assert await tailer.lag() == 3
    assert await tailer.step() == 3
    assert sink.applied == [0, 1, 2] and await tailer.lag() == 0


async def test_a_refused_save_fences_the_tailer_out() -> None:
    source, sink, checkpoint = InMemoryLog(3), Sink(), InMemoryFencedCheckpoint()
    tailer = tailer_for(source, sink, checkpoint)
    assert await tailer.step() == 3
    source.append(2)
    checkpoint.fenced = True
    with pytest.raises(TailerFencedError):
        await tailer.step()
    assert tailer.status.checkpoint == 3  # applied again at worst, never recorded as done
    assert sink.applied == [1, 2, 3, 4, 5]

    # `run()` ends with the same error, not a retry: the position belongs to someone else.
    task = asyncio.create_task(tailer.run())
    with pytest.raises(TailerFencedError):
        await asyncio.wait_for(task, 5)
    assert not tailer.status.running


async def test_after_wait_can_fence_the_run() -> None:
    async def lost() -> None:
        raise TailerFencedError("lease lost")

    tailer = tailer_for(InMemoryLog(2), Sink(), after_wait=lost)
    with pytest.raises(TailerFencedError):
        await asyncio.wait_for(tailer.run(), 5)


async def test_failures_back_off_doubling_and_retry_without_skipping() -> None:
    source, sink = InMemoryLog(4), Sink()
    sink.fail = 3
    source.fail_reads = 1
    registry = CollectorRegistry()
    tailer = tailer_for(source, sink, metrics=TailerMetrics(registry))
    pauses: list[float] = []
    pause = tailer._pause

    async def recorded(seconds: float) -> None:
        pauses.append(seconds)
        await pause(seconds)

    tailer._pause = recorded  # type: ignore[method-assign]
    task = await running(tailer)
    try:
        await wait_until(lambda: tailer.status.checkpoint == 4, what="applied after retries")
        assert sink.batches == [[1, 2, 3, 4]]
        assert tailer.status.last_error is None  # cleared by the round that succeeded
        # One failed read, then three failed applies: 0.01, 0.02, 0.04, then capped.
        assert pauses[:4] == [0.01, 0.02, 0.04, 0.04]
        errors = registry.get_sample_value("mmgen_events_tailer_errors_total", {"tailer": "test"})
        assert errors == 4
        # After a success the backoff starts small again.
        sink.fail = 1
        source.append()
        await wait_until(lambda: tailer.status.checkpoint == 5, what="applied after a retry")
        assert pauses[4] == 0.01
    finally:
        await tailer.stop()
        await task


async def test_last_error_is_shown_while_failing() -> None:
    source, sink = InMemoryLog(1), Sink()
    sink.fail = 1_000
    tailer = tailer_for(source, sink)
    task = await running(tailer)
    try:
        await wait_until(lambda: tailer.status.last_error is not None, what="error recorded")
        assert "sink refused" in (tailer.status.last_error or "")
        assert tailer.status.checkpoint == 0
    finally:
        await tailer.stop()
        await task


async def test_read_ahead_is_used_when_the_next_round_starts_where_it_was_read() -> None:
    source, sink = InMemoryLog(12), Sink()
    tailer = tailer_for(source, sink, window=5)
    assert await tailer.step() == 5
    assert await tailer.step() == 5
    assert await tailer.step() == 2
    # The second window was read ahead while the first was applied, the third while the
    # second was: every window read once.
    assert source.reads == [(1, 6), (6, 11), (11, 16)]
    assert sink.applied == list(range(1, 13))


async def test_read_ahead_is_checked_for_holes_like_any_window() -> None:
    source, sink = InMemoryLog(12), Sink()
    source.hidden = {8}
    tailer = tailer_for(source, sink, window=5)
    assert await tailer.step() == 5
    assert await tailer.step() == 2  # the window read ahead: 6, 7, then the hole
    assert tailer.status.hole_at == 8 and sink.applied == [1, 2, 3, 4, 5, 6, 7]
    assert source.reads == [(1, 6), (6, 11)]


async def test_read_ahead_is_discarded_when_the_next_round_starts_elsewhere() -> None:
    source, sink = InMemoryLog(12), Sink()
    tailer = tailer_for(source, sink, window=5)
    sink.fail = 1  # the first window fails after the second was read ahead
    with pytest.raises(RuntimeError):
        await tailer.step()
    source.hidden = {7}  # what the read ahead saw is no longer what a fresh read sees
    assert await tailer.step() == 5
    assert sink.applied == [1, 2, 3, 4, 5]
    assert await tailer.step() == 1
    assert tailer.status.hole_at == 7
    # (1, 6) read twice, the stale read-ahead of (6, 11) dropped for a fresh one.
    assert source.reads == [(1, 6), (6, 11), (1, 6), (6, 11)]

    tailer.reset(0)  # a new position drops what was read ahead, too
    source.hidden = set()
    assert await tailer.step() == 5 and sink.applied[-5:] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("where", ["idle", "hole", "backoff"])
async def test_stop_returns_promptly_whatever_run_waits_for(where: str) -> None:
    source, sink = InMemoryLog(3), Sink()
    source.wait_blocks = True
    if where == "hole":
        source.hidden = {2}
    if where == "backoff":
        sink.fail = 1_000
    tailer = tailer_for(
        source,
        sink,
        idle_wait_s=600,
        hole_retry_s=600,
        error_backoff_s=600,
        max_error_backoff_s=600,
    )
    task = await running(tailer)
    if where == "idle":
        await wait_until(lambda: source.waits >= 1, what="idle wait")
    elif where == "hole":
        await wait_until(lambda: tailer.status.hole_at == 2, what="hole wait")
    else:
        await wait_until(lambda: tailer.status.last_error is not None, what="backoff")
    await asyncio.wait_for(tailer.stop(), 5)  # far below the 600 s the waits would take
    assert task.done() and not tailer.status.running
    await task
    await tailer.stop()  # stopping again is harmless
    await asyncio.wait_for(tailer.run(), 5)  # and a stopped tailer does not start again


async def test_stop_before_run_starts_makes_run_return_at_once() -> None:
    tailer = tailer_for(InMemoryLog(3), Sink())
    await tailer.stop()
    await asyncio.wait_for(tailer.run(), 5)
    assert tailer.status.checkpoint == 0


async def test_notify_wakes_an_idle_tailer() -> None:
    source, sink = InMemoryLog(1), Sink()
    source.wait_blocks = True  # only notify can end the 600 s idle wait
    tailer = tailer_for(source, sink, idle_wait_s=600)
    task = await running(tailer)
    try:
        await wait_until(lambda: tailer.status.checkpoint == 1 and source.waits >= 1, what="idle")
        source.append()
        tailer.notify()
        await wait_until(lambda: tailer.status.checkpoint == 2, timeout_s=5, what="woken")
    finally:
        await tailer.stop()
        await task


async def test_run_twice_at_once_is_refused() -> None:
    tailer = tailer_for(InMemoryLog(1), Sink())
    task = await running(tailer)
    try:
        with pytest.raises(TailerError):
            await tailer.run()
    finally:
        await tailer.stop()
        await task


async def test_metrics_show_checkpoint_applied_and_hole() -> None:
    registry = CollectorRegistry()
    source = InMemoryLog(6)
    source.hidden = {5}
    tailer = tailer_for(source, Sink(), metrics=TailerMetrics(registry))
    await tailer.step()

    def sample(name: str) -> float | None:
        return registry.get_sample_value(f"mmgen_events_tailer_{name}", {"tailer": "test"})

    assert (sample("checkpoint"), sample("applied_total"), sample("hole_at")) == (4, 4, 5)
    source.hidden = set()
    await tailer.step()
    assert (sample("checkpoint"), sample("applied_total"), sample("hole_at")) == (6, 6, 0)
    assert await tailer.lag() == 0

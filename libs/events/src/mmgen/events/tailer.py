"""The checkpointed tailer: the one "read from a checkpoint, stop at a hole, advance, wait" loop.

Everything that follows a numbered log — the outbox relay, read-model projectors, the audit
log's publisher — needs the same guarantees, so they are kept in one place:
- nothing skipped: items are read in bounded windows `[checkpoint + 1, + window)` and only the
  contiguous run after the checkpoint is applied. A number missing in the window, or an empty
  window while the source says that number exists, is a HOLE: the tailer waits and reads
  again, however long it takes (an append in flight becomes visible; a lost one is a fault to
  repair, never to jump over);
- at-least-once: the checkpoint is saved only after `apply` returned for the whole run, so a
  crash repeats a run at worst (every `apply` must be idempotent); a saved checkpoint never
  moves back;
- fencing: a `CheckpointStore` may refuse a save (the relay's lease was taken over); the
  tailer then stops with `TailerFencedError` instead of going on with a stale position;
- throughput: when a window came back full, the next one is read while this one is applied
  (read-ahead); the next round uses it only if it starts exactly where that read started;
- latency: between rounds it waits on the source (`wait`) or on `notify()` from a local
  append, whichever comes first, and polls at `idle_wait_s` otherwise;
- failures: any error of a round is logged, counted and retried with a doubling backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from mmgen.events.errors import EventsError

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

    from mmgen.events.envelope import Envelope
    from mmgen.events.store import EventStore

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECKPOINT_COLLECTION = "tailer_checkpoints"
"""Default collection of `MongoCheckpoint` documents: `{_id: tailer name, checkpoint}`."""


class TailerError(EventsError):
    """Base of the tailer's errors."""


class TailerFencedError(TailerError):
    """The checkpoint store refused to move (another instance owns the position): stop."""


class TailSource(Protocol[T]):
    """A log numbered by consecutive integers that a `Tailer` follows."""

    max_window: int
    """The largest `end - start` that `read` accepts."""

    def seq(self, item: T) -> int:
        """The number of an item."""
        ...

    async def read(self, start: int, end: int) -> Sequence[T]:
        """Items with `start <= seq < end` that are visible now, ascending."""
        ...

    async def last(self) -> int:
        """The highest number given out so far (tells a hole from the end of the log)."""
        ...

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return once an item numbered above `after` may exist, or when `timeout` passes."""
        ...


class CheckpointStore(Protocol):
    """Where a tailer keeps the number of the last item it applied."""

    async def load(self) -> int:
        """The last applied number (`first_seq - 1` when nothing was applied yet)."""
        ...

    async def save(self, seq: int) -> bool:
        """Record `seq` as applied (never moving back); False: fenced out, stop."""
        ...


class MemoryCheckpoint:
    """A checkpoint in memory: unit tests, and tailers that rebuild from the start anyway."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    async def load(self) -> int:
        return self.value

    async def save(self, seq: int) -> bool:
        self.value = max(self.value, seq)
        return True


class MongoCheckpoint:
    """A checkpoint document `{_id: name, checkpoint}`; `$max` keeps it from moving back.

    Several tailers share one collection (one document each, by name). `start` is what `load`
    returns before the first save (`first_seq - 1` of the tailer).
    """

    def __init__(self, collection: AsyncCollection[Any], name: str, *, start: int = 0) -> None:
        self.collection = collection
        self.name = name
        self.start = start

    async def load(self) -> int:
        doc = await self.collection.find_one({"_id": self.name})
        if doc is None or doc.get("checkpoint") is None:
            return self.start
        return int(doc["checkpoint"])

    async def save(self, seq: int) -> bool:
        await self.collection.update_one(
            {"_id": self.name}, {"$max": {"checkpoint": seq}}, upsert=True
        )
        return True


class StoreSource:
    """An event store as a `TailSource`: events by `producer_seq`, from 1.

    `wait_for_append` replaces the store's own wait (the relay's tests pass one that never
    polls); by default a commit in this process wakes it and `last_seq` is polled otherwise.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        wait_for_append: Callable[[int, float], Awaitable[int]] | None = None,
    ) -> None:
        self.store = store
        self.max_window = store.max_read_window
        self._wait_for_append = wait_for_append or store.wait_for_append

    def seq(self, item: Envelope) -> int:
        if item.producer_seq is None:
            raise TailerError(f"event {item.event_id} read from the store has no producer_seq")
        return item.producer_seq

    async def read(self, start: int, end: int) -> Sequence[Envelope]:
        return await self.store.read_range(start, end)

    async def last(self) -> int:
        return await self.store.last_seq()

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109
        await self._wait_for_append(after, timeout)


class TailerMetrics:
    """Prometheus metrics of tailers, one label value per tailer name; share one per registry.

    The names default to `mmgen_events_tailer_{checkpoint,applied,hole_at,errors}` with the
    label `tailer`; `prefix`, `label` and `applied_name` let a component keep the names its
    dashboards already know (the relay: `relay_published{producer}`, ...).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "mmgen",
        *,
        subsystem: str = "events",
        prefix: str = "tailer",
        label: str = "tailer",
        applied_name: str = "applied",
    ) -> None:
        kwargs: dict[str, Any] = {"namespace": namespace, "subsystem": subsystem}
        if registry is not None:
            kwargs["registry"] = registry
        self.checkpoint = Gauge(
            f"{prefix}_checkpoint", "Last number applied and checkpointed", [label], **kwargs
        )
        self.applied = Counter(
            f"{prefix}_{applied_name}", "Items applied (and checkpointed)", [label], **kwargs
        )
        self.hole = Gauge(
            f"{prefix}_hole_at",
            "Number the tailer is stopped at (first number - 1: no hole)",
            [label],
            **kwargs,
        )
        self.errors = Counter(f"{prefix}_errors", "Rounds that failed", [label], **kwargs)


@dataclass
class TailerStatus:
    """What a tailer knows about itself (readiness, status pages, tests)."""

    name: str
    checkpoint: int
    hole_at: int | None = None
    last_error: str | None = None
    """The error of the last failed round; None once a round succeeds."""
    applied: int = 0
    running: bool = False


class Tailer(Generic[T]):
    """Follows `source` from `checkpoint`, handing each contiguous run to `apply`.

    Drive it with `await run()` in a task (returns after `stop()`; raises `TailerFencedError`
    when the checkpoint store fences it out) or step by step with `step()`.

    `after_wait`, if given, runs after every idle or hole wait of `run()`: the relay renews its
    lease there (raising `TailerFencedError` when it is lost ends `run()` the same way).
    """

    def __init__(
        self,
        name: str,
        source: TailSource[T],
        checkpoint: CheckpointStore,
        apply: Callable[[Sequence[T]], Awaitable[None]],
        *,
        first_seq: int = 1,
        window: int = 500,
        idle_wait_s: float = 1.0,
        hole_retry_s: float = 0.2,
        error_backoff_s: float = 0.5,
        max_error_backoff_s: float = 10.0,
        metrics: TailerMetrics | None = None,
        after_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.name = name
        self.source = source
        self.checkpoint = checkpoint
        self.apply = apply
        self.first_seq = first_seq
        self.window = min(window, source.max_window)
        self.idle_wait_s = idle_wait_s
        self.hole_retry_s = hole_retry_s
        self.error_backoff_s = error_backoff_s
        self.max_error_backoff_s = max_error_backoff_s
        self.metrics = metrics
        self.after_wait = after_wait
        self.status = TailerStatus(name=name, checkpoint=first_seq - 1)
        self._loaded = False
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()
        self._run_task: asyncio.Task[Any] | None = None
        self._read_ahead: tuple[int, asyncio.Future[Sequence[T]]] | None = None

    # --- position ---------------------------------------------------------------------------

    async def load(self) -> int:
        """(Re)read the checkpoint from its store and continue after it."""
        self.discard_read_ahead()
        value = await self.checkpoint.load()
        self.status.checkpoint = value
        self._loaded = True
        if self.metrics is not None:
            self.metrics.checkpoint.labels(self.name).set(value)
        return value

    def reset(self, checkpoint: int) -> None:
        """Continue after `checkpoint`, in memory only (the store keeps its value, and a save
        never moves it back): replays the log into dropped read models."""
        self.discard_read_ahead()
        self.status.checkpoint = checkpoint
        self.status.hole_at = None
        self._loaded = True

    async def lag(self) -> int:
        """How many numbers the source has beyond the checkpoint (holes included)."""
        if not self._loaded:
            await self.load()
        return max(0, await self.source.last() - self.status.checkpoint)

    # --- one round --------------------------------------------------------------------------

    async def step(self) -> int:
        """Apply the contiguous run after the checkpoint (one window at most), then save it.

        Returns how many items were applied (0 at the end of the log or at a hole). Raises
        `TailerFencedError` if the checkpoint store refused the save; errors of `apply` and of
        the source propagate, with the checkpoint where it was.
        """
        if not self._loaded:
            await self.load()
        start = self.status.checkpoint + 1
        items = await self._take_read_ahead(start)
        if items is None:
            items = await self.source.read(start, start + self.window)
        run = self._contiguous(items, start)
        if len(run) < len(items):
            self._note_hole(start + len(run))
        elif self.status.hole_at is not None:
            self._note_hole(None)
        if not run:
            if not items and await self.source.last() >= start:
                self._note_hole(start)  # numbered but not visible: wait, never skip
            return 0
        if len(run) == self.window:
            # A full window: read the next one while this one is applied (the read and the
            # apply overlap; the next round checks continuity again).
            self._start_read_ahead(start + len(run))
        await self.apply(run)
        last = start + len(run) - 1
        if not await self.checkpoint.save(last):
            self._loaded = False  # the position belongs to someone else now
            self.discard_read_ahead()
            raise TailerFencedError(f"{self.name}: checkpoint {last} refused (fenced out)")
        self.status.checkpoint = last
        self.status.applied += len(run)
        if self.metrics is not None:
            self.metrics.applied.labels(self.name).inc(len(run))
            self.metrics.checkpoint.labels(self.name).set(last)
        return len(run)

    def _contiguous(self, items: Sequence[T], start: int) -> list[T]:
        """The prefix of `items` numbered start, start + 1, … without a gap."""
        run: list[T] = []
        expected = start
        for item in items:
            if self.source.seq(item) != expected:
                break
            run.append(item)
            expected += 1
        return run

    def _note_hole(self, seq: int | None) -> None:
        if seq is not None and self.status.hole_at != seq:
            log.warning("%s: number %d is missing; waiting for it", self.name, seq)
        self.status.hole_at = seq
        if self.metrics is not None:
            self.metrics.hole.labels(self.name).set(self.first_seq - 1 if seq is None else seq)

    # --- read-ahead -------------------------------------------------------------------------

    def _start_read_ahead(self, start: int) -> None:
        self.discard_read_ahead()
        task = asyncio.ensure_future(self.source.read(start, start + self.window))
        self._read_ahead = (start, task)

    async def _take_read_ahead(self, start: int) -> Sequence[T] | None:
        """The window read ahead for `start`, if that is where it was read (else None)."""
        if self._read_ahead is None:
            return None
        at, task = self._read_ahead
        self._read_ahead = None
        if at != start:
            _drop(task)
            return None
        return await task

    def discard_read_ahead(self) -> None:
        """Drop a window read ahead (its result, or failure, is never used)."""
        if self._read_ahead is not None:
            _drop(self._read_ahead[1])
            self._read_ahead = None

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Step until `stop()`: after a full window at once, at a hole after `hole_retry_s`,
        at the end after the next append (or `idle_wait_s`); after a failure with backoff.

        Raises `TailerFencedError` when fenced out (the caller decides whether to take the
        position again and call `run()` once more).
        """
        if self._run_task is not None:
            raise TailerError(f"{self.name} is already running")
        self._run_task = asyncio.current_task()
        self._finished.clear()
        self.status.running = True
        backoff = self.error_backoff_s
        try:
            while not self._stopping.is_set():
                try:
                    self._wake.clear()  # a notify from now on wakes the wait below
                    applied = await self.step()
                    self.status.last_error = None
                    backoff = self.error_backoff_s
                    if applied >= self.window:
                        continue  # more is probably waiting
                    if self.status.hole_at is not None:
                        await self._pause(self.hole_retry_s)
                    else:
                        await self._idle()
                    if self.after_wait is not None and not self._stopping.is_set():
                        await self.after_wait()
                except TailerFencedError:
                    log.warning("%s fenced out at checkpoint %d", self.name, self.status.checkpoint)
                    raise
                except Exception as exc:  # any failure: log, count, back off and retry
                    self.status.last_error = repr(exc)
                    if self.metrics is not None:
                        self.metrics.errors.labels(self.name).inc()
                    log.exception("%s: round failed, retrying in %.1f s", self.name, backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self.max_error_backoff_s)
        finally:
            self.discard_read_ahead()
            self.status.running = False
            self._run_task = None
            self._finished.set()

    async def stop(self) -> None:
        """End `run()` (for good) and wait until it returned.

        The round in flight finishes first, so the checkpoint matches what was applied; the
        waits between rounds end at once.
        """
        self._stopping.set()
        task = self._run_task
        if task is not None and task is not asyncio.current_task():
            await self._finished.wait()

    def notify(self) -> None:
        """Wake `run()` now: something was appended."""
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _idle(self) -> None:
        """Wait for the source, `notify()` or `stop()`, at most `idle_wait_s`."""
        source_wait = asyncio.ensure_future(
            self.source.wait(self.status.checkpoint, self.idle_wait_s)
        )
        waits: set[asyncio.Future[Any]] = {
            source_wait,
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self._wake.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=self.idle_wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        failed = source_wait.exception() if not source_wait.cancelled() else None
        if failed is not None:
            raise failed


def _drop(task: asyncio.Future[Any]) -> None:
    """Cancel a read whose result will not be used, retrieving its outcome so asyncio does not
    warn about an exception nobody looked at."""
    task.cancel()
    task.add_done_callback(_consume_result)


def _consume_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()

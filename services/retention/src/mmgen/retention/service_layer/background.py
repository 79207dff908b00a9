"""What runs in the background of a retention process: follow-ups and the scheduler.

`FollowUps` assesses an erasure after an acknowledgement was recorded. The acknowledgement
arrives in a consumer's transaction, which must not wait on other services; assessing means
reading every acknowledged service's footprint over HTTP, so it is queued here and done at
once, outside it (one request is queued once however many answers arrive meanwhile). A
crash loses nothing: the scheduler's pass assesses every open erasure again.

`SchedulerLoop` runs `Scheduler.tick` every interval (and on `POST /retention/run`), one
pass at a time, and reports the overdue count to `on_overdue` (the service's gauge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mmgen.events.envelope import Actor
from mmgen.retention.service_layer.erasure import ErasureCoordinator
from mmgen.retention.service_layer.scheduler import PassResult, Scheduler

log = logging.getLogger(__name__)


class FollowUps:
    """A queue of requests to assess, worked off by one task."""

    def __init__(self, coordinator: ErasureCoordinator) -> None:
        self.coordinator = coordinator
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, request_id: str) -> None:
        if request_id not in self._queued:
            self._queued.add(request_id)
            self._queue.put_nowait(request_id)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention-follow-ups")

    async def stop(self) -> None:
        await _cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            request_id = await self._queue.get()
            self._queued.discard(request_id)  # an answer from now on queues it again
            try:
                await self.coordinator.advance(request_id)
            except Exception:
                log.exception("assessing erasure %s failed; the scheduler retries", request_id)


class SchedulerLoop:
    """`Scheduler.tick` every `interval_s` (the first pass right after start), one at a time."""

    def __init__(
        self,
        scheduler: Scheduler,
        interval_s: float,
        *,
        on_pass: Callable[[PassResult], None] | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.interval_s = interval_s
        self.on_pass = on_pass
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last: PassResult | None = None

    async def run_now(self, *, by: Actor | None = None) -> PassResult:
        """One pass now (waits for a pass in progress to end first)."""
        async with self._lock:
            result = await self.scheduler.tick(by=by)
        self.last = result
        if self.on_pass is not None:
            self.on_pass(result)
        return result

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention-scheduler")

    async def stop(self) -> None:
        await _cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_now()
            except Exception:
                log.exception("scheduler pass failed; the next one runs in %.0f s", self.interval_s)
            await asyncio.sleep(self.interval_s)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

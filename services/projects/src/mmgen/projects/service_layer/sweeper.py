"""The periodic purge of uploads a crash left behind (chunks stored, no event recorded).

An upload is marked pending until its `FileUploaded` event is stored; a process that dies in
between leaves encrypted chunks no event accounts for. This component looks for such leftovers
every `every` seconds and deletes those older than `older_than` (any replica may run it: a
purge of an upload that was recorded after all only clears its mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from mmgen.projects.service_layer.files import FileUseCases

log = logging.getLogger(__name__)


class StaleUploadSweeper:
    def __init__(self, files: FileUseCases, *, older_than: timedelta, every: float) -> None:
        self.files = files
        self.older_than = older_than
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One round; returns how many leftovers were purged."""
        purged = await self.files.purge_stale_uploads(self.older_than)
        if purged:
            log.warning("purged %d unrecorded uploads left by a crash", purged)
        return purged

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the next round tries again; the database may be away
                log.exception("stale upload sweep failed")
            await asyncio.sleep(self.every)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projects-stale-uploads")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

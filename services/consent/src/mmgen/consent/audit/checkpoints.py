"""Signed tree heads: C2SP tlog-checkpoints over the audit log, made every N entries or T seconds.

Timestamp decision: the note carries ONE extension line `timestamp <RFC 3339 UTC, ms>`, so the
time is signed with the head (an unsigned timestamp could be moved by whoever serves it). The
API's `timestamp` is that same string. Verifiers that ignore extension lines (C2SP allows
them) still verify the note. Every head is kept, keyed by tree size, so consistency between
any two can be proved.

Witnesses: with `witnessing` configured, a new head is submitted to every witness before it
is stored, so the head is normally served with its cosignatures from the start; a witness that
was down or slow gets the latest head offered again on each later tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import SecretStr

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from mmgen.auditlog.entry import format_timestamp
from mmgen.consent.audit.store import CheckpointRecord, MongoAuditStore
from mmgen.platform.settings import key_bytes

if TYPE_CHECKING:
    from mmgen.consent.audit.metrics import AuditMetrics
    from mmgen.consent.audit.witnessing import Witnessing

log = logging.getLogger(__name__)

TIMESTAMP_PREFIX = "timestamp "


def load_signer(secret: str, origin: str) -> NoteSigner:
    """The log's signing key from its secret setting.

    A real key is a C2SP signer string `PRIVATE+KEY+<origin>+<id>+<b64>`. Anything else is key
    material for `mmgen.platform.key_bytes` (base64 of 32 bytes, as `mmgen up` generates and
    keeps under its state folder; a `dev-insecure-` default is stretched), used as the Ed25519
    seed with `origin` as the key name. Production refuses development secrets at start-up.
    """
    if secret.startswith("PRIVATE+KEY+"):
        return NoteSigner.from_string(secret)
    return NoteSigner(origin, key_bytes(SecretStr(secret)))


def checkpoint_timestamp(checkpoint: Checkpoint) -> str | None:
    """The signed `timestamp` extension line's value, if any."""
    for line in checkpoint.extensions:
        if line.startswith(TIMESTAMP_PREFIX):
            return line[len(TIMESTAMP_PREFIX) :]
    return None


class Checkpointer:
    """Signs the current head when it is due and stores it (idempotent per tree size)."""

    def __init__(
        self,
        store: MongoAuditStore,
        signer: NoteSigner,
        *,
        origin: str,
        every_entries: int,
        every_seconds: float,
        metrics: AuditMetrics | None = None,
        witnessing: Witnessing | None = None,
    ) -> None:
        if signer.name != origin:
            raise ValueError(f"signing key name {signer.name!r} is not the origin {origin!r}")
        self.store = store
        self.signer = signer
        self.origin = origin
        self.every_entries = max(1, every_entries)
        self.every_seconds = every_seconds
        self.metrics = metrics
        self.witnessing = witnessing
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_size: int | None = None
        self._last_at = 0.0

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier()

    def notify(self, size: int) -> None:
        """Called after an append: sign now if N entries have gone by since the last head."""
        if self._last_size is None or size - self._last_size >= self.every_entries:
            self._wake.set()

    async def sign_now(self) -> CheckpointRecord | None:
        """Sign the current head (None if the tree is empty or that size is signed already)."""
        head = await self.store.head()
        if head.size == 0:
            return None
        existing = await self.store.checkpoint(head.size)
        if existing is not None:
            self._last_size = head.size
            return existing
        stamp = format_timestamp(datetime.now(UTC))
        checkpoint = Checkpoint(
            self.origin, head.size, head.root(), (f"{TIMESTAMP_PREFIX}{stamp}",)
        )
        note = sign_checkpoint(checkpoint, self.signer)
        cosignatures: tuple[str, ...] = ()
        cosigners: tuple[str, ...] = ()
        if self.witnessing is not None:
            cosigned = await self.witnessing.cosign(head.size, note)
            cosigners, cosignatures = tuple(cosigned), tuple(cosigned.values())
        record = CheckpointRecord(
            head.size, head.root().hex(), stamp, note, cosignatures, cosigners
        )
        if await self.store.save_checkpoint(record) and self.metrics is not None:
            self.metrics.checkpoints.inc()
            self.metrics.checkpoint_size.set(head.size)
        self._last_size = head.size
        self._last_at = asyncio.get_running_loop().time()
        return record

    async def run(self) -> None:
        """Until `stop()`: sign when N entries accumulated (woken) or T seconds passed.

        Runs again after a `stop()` (a replica that leads the log again)."""
        self._stopping.clear()
        latest = await self.store.latest_checkpoint()
        self._last_size = latest.tree_size if latest else 0
        self._last_at = asyncio.get_running_loop().time()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.every_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                head = await self.store.head()
                grown = head.size - (self._last_size or 0)
                elapsed = asyncio.get_running_loop().time() - self._last_at
                if grown > 0 and (grown >= self.every_entries or elapsed >= self.every_seconds):
                    await self.sign_now()
                await self.complete_cosignatures()
            except Exception:
                log.exception("audit checkpoint failed; retrying")
                await asyncio.sleep(min(1.0, self.every_seconds))

    async def complete_cosignatures(self) -> CheckpointRecord | None:
        """Offer the latest head to the witnesses whose cosignature it still lacks."""
        if self.witnessing is None:
            return None
        latest = await self.store.latest_checkpoint()
        return None if latest is None else await self.witnessing.complete(latest)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self.witnessing is not None:
            await self.witnessing.aclose()

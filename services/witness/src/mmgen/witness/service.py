"""The witness's one use case: add a checkpoint, and cosign it if it extends what was cosigned.

Checking the old size and recording the new head happen under one lock (C2SP: otherwise two
concurrent requests could roll the recorded head back), and the head is on disk before the
cosignature leaves (C2SP: persist before responding). The signature check runs outside the
lock: it needs no state, and it is the expensive part an unauthenticated caller can trigger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from mmgen.auditlog.checkpoint import NoteVerifier
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.errors import WitnessRequestMalformedError
from mmgen.auditlog.witness_protocol import AddCheckpointRequest
from mmgen.witness.domain import (
    ConflictError,
    ConsistencyProofError,
    LogKeys,
    RequestMalformedError,
    TreeHead,
    Verified,
    WitnessError,
    check_consistent,
    verify_signed,
)
from mmgen.witness.store import WitnessStore

log = logging.getLogger(__name__)


class Witness:
    """Cosigns checkpoints of the configured logs (C2SP tlog-witness `add-checkpoint`)."""

    def __init__(
        self,
        signer: CosignatureSigner,
        log_keys: Iterable[NoteVerifier],
        store: WitnessStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = LogKeys(log_keys)
        self.store = store
        self.clock = clock
        self._lock = asyncio.Lock()

    @property
    def verifier_key(self) -> str:
        """The witness's public key as a C2SP vkey (type 0x04): what verifiers pin."""
        return self.signer.verifier().to_string()

    async def add_checkpoint(self, body: bytes) -> str:
        """The cosignature line(s) for an add-checkpoint request body, or a `WitnessError`."""
        try:
            request = AddCheckpointRequest.parse(body)
        except WitnessRequestMalformedError as exc:
            raise RequestMalformedError(str(exc)) from exc
        verified = verify_signed(request, self.logs)
        origin = verified.checkpoint.origin
        async with self._lock:
            latest = self.store.heads().get(origin) or TreeHead.empty(origin)
            try:
                new = check_consistent(verified, latest)
            except (ConsistencyProofError, ConflictError) as exc:
                await self._keep_evidence(verified, latest, exc)
                raise
            if not await self.store.replace(latest, new):  # another writer: never roll back
                current = self.store.heads().get(origin) or TreeHead.empty(origin)
                raise ConflictError("the head moved while this request was checked", current.size)
        timestamp = int(self.clock())
        line = self.signer.cosign(verified.note_text, timestamp).line()
        log.info(
            "cosigned checkpoint",
            extra={"origin": origin, "size": new.size, "old_size": latest.size},
        )
        return line

    async def _keep_evidence(self, verified: Verified, latest: TreeHead, exc: WitnessError) -> None:
        """A validly signed checkpoint that contradicts a cosigned one may prove that the log
        showed two histories: keep it (not an old size that is merely stale)."""
        contradicts = isinstance(exc, ConsistencyProofError) or (
            isinstance(exc, ConflictError) and verified.request.old_size == latest.size
        )
        if not contradicts:
            return
        log.warning(
            "refused a signed checkpoint that contradicts a cosigned one",
            extra={"origin": latest.origin, "size": verified.checkpoint.size, "reason": str(exc)},
        )
        await self.store.record_evidence(
            {
                "at": int(self.clock()),
                "origin": latest.origin,
                "reason": str(exc),
                "cosigned_size": latest.size,
                "cosigned_note": latest.note,
                "refused_note": verified.request.note,
                "old_size": verified.request.old_size,
                "proof": [h.hex() for h in verified.request.proof],
            }
        )

    def latest_sizes(self) -> dict[str, int]:
        return {origin: head.size for origin, head in self.store.heads().items()}

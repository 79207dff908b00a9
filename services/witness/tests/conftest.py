"""Fixtures of the witness's tests: a log that signs checkpoints over leaves it holds."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.witness_protocol import AddCheckpointRequest


@dataclass
class SigningLog:
    """A transparency log in memory: leaves, its key, checkpoints and consistency proofs."""

    signer: NoteSigner
    leaves: list[bytes] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.signer.name

    @property
    def key(self) -> str:
        return self.signer.verifier().to_string()

    def append(self, n: int, tag: str = "entry") -> None:
        start = len(self.leaves)
        self.leaves += [merkle.hash_leaf(f"{tag} {start + i}".encode()) for i in range(n)]

    def note(self, size: int | None = None, signer: NoteSigner | None = None) -> str:
        size = len(self.leaves) if size is None else size
        root = merkle.root_from_leaf_hashes(self.leaves[:size])
        return sign_checkpoint(Checkpoint(self.origin, size, root), signer or self.signer)

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new is None else new
        if old in (0, new):
            return []
        return merkle.consistency_proof(self.leaves[:new], old)

    def request(self, old: int, size: int | None = None) -> AddCheckpointRequest:
        size = len(self.leaves) if size is None else size
        return AddCheckpointRequest.of(old, self.proof(old, size), self.note(size))

    def restored(self, size: int) -> SigningLog:
        """The same log restored from a backup of its first `size` leaves (same key)."""
        return SigningLog(self.signer, list(self.leaves[:size]))


@pytest.fixture
def log() -> SigningLog:
    return SigningLog(NoteSigner.generate("log.test/audit"))


@pytest.fixture
def witness_key() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.test/w1")

"""mmgen.auditlog: the storage-free core of the tamper-evident audit log.

Submodules: ``jcs`` (RFC 8785), ``entry`` (entry model, bytes, hash chain), ``merkle``
(RFC 9162 tree, proofs, storage-based proofs), ``checkpoint`` (C2SP signed notes and
checkpoints), ``cosignature`` (C2SP witness cosignatures, quorum checks), ``witness_protocol``
(the C2SP tlog-witness messages), ``verify`` (streaming offline verifier), ``memory``
(in-memory node store).
"""

from .errors import (
    AuditLogError,
    CanonicalizationError,
    CheckpointMalformedError,
    EntryMalformedError,
    KeyMalformedError,
    NoteMalformedError,
    NoteUnverifiedError,
    ProofInvalidError,
    QuorumNotMetError,
    TreeStorageError,
    WitnessRequestMalformedError,
)

__all__ = [
    "AuditLogError",
    "CanonicalizationError",
    "CheckpointMalformedError",
    "EntryMalformedError",
    "KeyMalformedError",
    "NoteMalformedError",
    "NoteUnverifiedError",
    "ProofInvalidError",
    "QuorumNotMetError",
    "TreeStorageError",
    "WitnessRequestMalformedError",
]

"""mmgen.auditlog: the storage-free core of the tamper-evident audit log.

Submodules: ``jcs`` (RFC 8785), ``entry`` (entry model, bytes, hash chain), ``merkle``
(RFC 9162 tree, proofs, storage-based proofs), ``checkpoint`` (C2SP signed notes and
checkpoints), ``verify`` (streaming offline verifier), ``memory`` (in-memory node store).
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
    TreeStorageError,
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
    "TreeStorageError",
]

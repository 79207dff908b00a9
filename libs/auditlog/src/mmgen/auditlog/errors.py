"""Exceptions of mmgen.auditlog: one root, so callers can map every refusal in one place."""

from __future__ import annotations


class AuditLogError(Exception):
    """Root of every error raised by mmgen.auditlog."""


class CanonicalizationError(AuditLogError, ValueError):
    """A value has no RFC 8785 canonical form (NaN, unsafe integer, lone surrogate, ...)."""


class EntryMalformedError(AuditLogError, ValueError):
    """An audit entry does not have the exact shape and canonical field forms of DESIGN.md."""


class ProofInvalidError(AuditLogError, ValueError):
    """A Merkle inclusion or consistency proof does not verify (or its parameters are invalid)."""


class TreeStorageError(AuditLogError):
    """A NodeReader could not supply a node that a complete tree of the given size must have."""


class KeyMalformedError(AuditLogError, ValueError):
    """A signer or verifier key string is not a valid C2SP/Go note key."""


class NoteMalformedError(AuditLogError, ValueError):
    """Signed-note text breaks the C2SP signed-note syntax."""


class NoteUnverifiedError(AuditLogError):
    """No trusted key signed the note, or a trusted key's signature is wrong."""


class CheckpointMalformedError(NoteMalformedError):
    """The note text is not a C2SP tlog-checkpoint body."""


class QuorumNotMetError(NoteUnverifiedError):
    """Fewer pinned witnesses cosigned a checkpoint than the verifier requires."""

    def __init__(self, message: str, *, found: int, required: int) -> None:
        super().__init__(message)
        self.found = found
        self.required = required


class WitnessRequestMalformedError(AuditLogError, ValueError):
    """A tlog-witness message (add-checkpoint body, size body, response) breaks its format."""

"""What a witness decides, without I/O: may this checkpoint be cosigned (c2sp.org/tlog-witness)?

`check_add_checkpoint(request, logs, latest)` applies the protocol's checks in its order and
returns the tree head to record, or raises the refusal the HTTP edge turns into a status:

1. the note is a syntactically valid signed note (else 400);
2. its origin is a log the witness is configured for (else 404);
3. a signature by that log's key verifies, and none by it fails (else 403);
4. the body is a checkpoint and the old size is not beyond its size (else 400);
5. the old size is the size the witness cosigned last for that log, 0 if none (else 409 with
   that size) — so a client can never make the witness go back in time;
6. at equal sizes the root hashes are equal (else 409: the same size with another history);
7. a non-empty old tree and the new one are joined by a valid RFC 6962 consistency proof;
   from 0, and between equal sizes, the proof is empty (else 422).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteVerifier, open_note
from mmgen.auditlog.errors import (
    AuditLogError,
    NoteMalformedError,
    NoteUnverifiedError,
    ProofInvalidError,
)
from mmgen.auditlog.witness_protocol import AddCheckpointRequest


class WitnessError(Exception):
    """Root of the witness's refusals; `status` is the protocol's HTTP status."""

    status = 500


class RequestMalformedError(WitnessError):
    status = 400


class UnknownLogError(WitnessError):
    status = 404


class CheckpointNotSignedError(WitnessError):
    status = 403


class ConflictError(WitnessError):
    """409: the client's old size is not the witness's, or the same size has another root.
    `latest_size` goes back in the body (`text/x.tlog.size`)."""

    status = 409

    def __init__(self, message: str, latest_size: int) -> None:
        super().__init__(message)
        self.latest_size = latest_size


class ConsistencyProofError(WitnessError):
    status = 422


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The latest checkpoint a witness cosigned for one log (what it must never contradict)."""

    origin: str
    size: int
    root_hash: bytes
    note: str

    @classmethod
    def empty(cls, origin: str) -> TreeHead:
        """Before the first cosignature: size 0, whose only root is the empty tree's."""
        return cls(origin, 0, merkle.EMPTY_ROOT, "")


class LogKeys:
    """The logs a witness cosigns: origin → the verifier keys it trusts for that origin."""

    def __init__(self, keys: Iterable[NoteVerifier]) -> None:
        self._by_origin: dict[str, list[NoteVerifier]] = {}
        for key in keys:
            self._by_origin.setdefault(key.name, []).append(key)

    def __contains__(self, origin: object) -> bool:
        return origin in self._by_origin

    def of(self, origin: str) -> list[NoteVerifier]:
        return self._by_origin.get(origin, [])

    @property
    def origins(self) -> list[str]:
        return sorted(self._by_origin)


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose checkpoint the log's key signed (checks 1-4 passed)."""

    request: AddCheckpointRequest
    checkpoint: Checkpoint
    note_text: str


def verify_signed(request: AddCheckpointRequest, logs: LogKeys) -> Verified:
    """Checks 1-4: a valid note, from a known log, signed by its key, a checkpoint."""
    try:
        note = request.signed_note()
    except NoteMalformedError as exc:
        raise RequestMalformedError(f"not a signed note: {exc}") from exc
    origin = note.text.split("\n", 1)[0]
    if origin not in logs:
        raise UnknownLogError(f"this witness does not witness the log {origin!r}")
    try:
        opened = open_note(request.note, logs.of(origin))
    except NoteUnverifiedError as exc:
        raise CheckpointNotSignedError(f"not signed by the log's key: {exc}") from exc
    except AuditLogError as exc:
        raise RequestMalformedError(str(exc)) from exc
    try:
        checkpoint = Checkpoint.from_text(opened.text)
    except AuditLogError as exc:
        raise RequestMalformedError(f"not a checkpoint: {exc}") from exc
    if request.old_size > checkpoint.size:
        raise RequestMalformedError(
            f"old size {request.old_size} is beyond the checkpoint's size {checkpoint.size}"
        )
    return Verified(request, checkpoint, opened.text)


def check_consistent(verified: Verified, latest: TreeHead) -> TreeHead:
    """Checks 5-7 against the latest head cosigned for the log; the head to record."""
    request, checkpoint = verified.request, verified.checkpoint
    if request.old_size != latest.size:
        raise ConflictError(
            f"old size {request.old_size} is not the size this witness cosigned last "
            f"({latest.size})",
            latest.size,
        )
    new = TreeHead(checkpoint.origin, checkpoint.size, checkpoint.root_hash, request.note)
    if checkpoint.size == latest.size:
        if checkpoint.root_hash != latest.root_hash:
            raise ConflictError(
                f"a checkpoint of size {checkpoint.size} with another root hash than the one "
                "this witness cosigned: the log's history differs",
                latest.size,
            )
        if request.proof:
            raise ConsistencyProofError("between equal sizes the consistency proof is empty")
        return new
    if latest.size == 0:
        if request.proof:
            raise ConsistencyProofError("from old size 0 the consistency proof is empty")
        return new
    try:
        merkle.verify_consistency(
            latest.size,
            checkpoint.size,
            list(request.proof),
            latest.root_hash,
            checkpoint.root_hash,
        )
    except ProofInvalidError as exc:
        raise ConsistencyProofError(
            f"the checkpoint of size {checkpoint.size} is not consistent with the one of size "
            f"{latest.size} this witness cosigned: {exc}"
        ) from exc
    return new


def check_add_checkpoint(
    request: AddCheckpointRequest, logs: LogKeys, latest: Mapping[str, TreeHead]
) -> tuple[Verified, TreeHead]:
    """All checks, in the protocol's order (`latest`: origin → head cosigned last)."""
    verified = verify_signed(request, logs)
    origin = verified.checkpoint.origin
    return verified, check_consistent(verified, latest.get(origin) or TreeHead.empty(origin))

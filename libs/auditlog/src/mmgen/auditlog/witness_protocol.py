"""C2SP tlog-witness messages: the add-checkpoint request, the 409 size body, the response.

``POST <prefix>/add-checkpoint`` (c2sp.org/tlog-witness) carries, each line ending in "\\n":

    old <size of the checkpoint the client believes the witness cosigned last>
    <zero to 63 consistency proof hashes from that size, base64, one per line>
    <empty line>
    <the signed checkpoint note>

The witness answers 200 with one or more cosignature lines (signed-note signature lines),
or 409 with ``text/x.tlog.size``: its latest cosigned size and a newline. The log side
(consent's audit component) and the witness (``mmgen.witness``) both use these functions,
so the two cannot disagree on the bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .checkpoint import (
    MAX_SIGNATURES,
    NoteSignature,
    SignedNote,
    open_note,
    parse_note,
)
from .cosignature import CosignatureVerifier
from .errors import AuditLogError, NoteUnverifiedError, WitnessRequestMalformedError
from .merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "format_size",
    "parse_size",
    "verified_cosignature",
]

ADD_CHECKPOINT_PATH = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
#: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
#: Largest request body a witness reads (a note of at most 100 signatures of any size).
MAX_BODY_BYTES = 64 * 1024
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _size(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise WitnessRequestMalformedError(f"{what} is not a decimal without leading zeros")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise WitnessRequestMalformedError(f"{what} is larger than a uint64")
    return value


def _hash(line: str) -> bytes:
    try:
        raw = base64.b64decode(line.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise WitnessRequestMalformedError("a proof line is not base64") from exc
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != line:
        raise WitnessRequestMalformedError("a proof line is not one hash in canonical base64")
    return raw


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    """One add-checkpoint request: old size, consistency proof from it, the signed note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def __post_init__(self) -> None:
        if isinstance(self.old_size, bool) or not 0 <= self.old_size <= MAX_TREE_SIZE:
            raise WitnessRequestMalformedError("old size must be a uint64")
        if len(self.proof) > MAX_PROOF_LINES:
            raise WitnessRequestMalformedError(f"more than {MAX_PROOF_LINES} proof lines")
        if any(len(h) != HASH_SIZE for h in self.proof):
            raise WitnessRequestMalformedError(f"proof hashes are {HASH_SIZE} bytes")

    @classmethod
    def of(cls, old_size: int, proof: Sequence[bytes], note: str) -> AddCheckpointRequest:
        return cls(old_size, tuple(proof), note)

    def encode(self) -> bytes:
        lines = [f"old {self.old_size}\n"]
        lines += [base64.b64encode(h).decode("ascii") + "\n" for h in self.proof]
        return ("".join(lines) + "\n" + self.note).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes | str) -> AddCheckpointRequest:
        """Strict parse; the note is only split off here (the witness verifies it)."""
        if isinstance(body, bytes):
            if len(body) > MAX_BODY_BYTES:
                raise WitnessRequestMalformedError("request body too large")
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WitnessRequestMalformedError("request body is not UTF-8") from exc
        head, sep, note = body.partition("\n\n")
        if not sep:
            raise WitnessRequestMalformedError("no empty line between the proof and the note")
        lines = head.split("\n")
        if not lines[0].startswith("old "):
            raise WitnessRequestMalformedError('the first line must be "old <size>"')
        old_size = _size(lines[0][4:], "old size")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise WitnessRequestMalformedError(f"more than {MAX_PROOF_LINES} proof lines")
        proof = tuple(_hash(line) for line in lines[1:])
        return cls(old_size, proof, note)

    def signed_note(self) -> SignedNote:
        """The note's syntax checked (no signature verified): `NoteMalformedError`."""
        return parse_note(self.note)


def format_size(size: int) -> str:
    """The 409 body: the witness's latest cosigned size in decimal and a newline."""
    return f"{size}\n"


def parse_size(body: bytes | str) -> int:
    """The size a witness sent with 409 (``text/x.tlog.size``)."""
    text = body.decode("ascii", "replace") if isinstance(body, bytes) else body
    if not text.endswith("\n"):
        raise WitnessRequestMalformedError("a size body ends in a newline")
    return _size(text[:-1], "size")


def verified_cosignature(note: str, response: str, witness: CosignatureVerifier) -> NoteSignature:
    """The line of a 200 response that ``witness`` made, verified over ``note``'s text.

    The response is appended to the checkpoint's text and opened as a note with only this
    witness trusted (C2SP: lines of other keys are ignored); a wrong or missing line raises.
    """
    if not response.endswith("\n"):
        raise WitnessRequestMalformedError("a cosignature response ends in a newline")
    if response.count("\n") > MAX_SIGNATURES:
        raise WitnessRequestMalformedError("too many lines in the cosignature response")
    text = parse_note(note).text
    try:
        opened = open_note(text + "\n" + response, [witness])
    except NoteUnverifiedError:
        raise  # a wrong or missing cosignature, not a malformed response
    except AuditLogError as exc:
        raise WitnessRequestMalformedError(f"cosignature response: {exc}") from exc
    return opened.signatures[0]

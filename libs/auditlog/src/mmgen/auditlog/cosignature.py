"""C2SP tlog-cosignature (Ed25519, cosignature/v1): witness keys, cosigning, quorum checks.

A cosignature is a note signature line that a witness adds to a checkpoint after checking
that it extends the last one it cosigned (c2sp.org/tlog-cosignature):

* key ID: ``SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]`` — signature
  type 0x04 (c2sp.org/signed-note), so the same key never passes for a log key (0x01);
* signature bytes (after the key ID): ``timestamp`` (u64, big-endian, POSIX seconds,
  at most 2**63-1) || Ed25519 signature (64 bytes);
* signed message: ``"cosignature/v1\\n" "time <timestamp>\\n"`` then the checkpoint's note
  text (with its extension lines, without signature lines).

Verifier keys are vkeys of type 0x04 (``<name>+<hex key ID>+base64(0x04 || public key)``);
an Ed25519 note vkey (type 0x01) of the same key is accepted too and converted, as the Go
reference does. The secret key is kept in the Go note signer form
(``PRIVATE+KEY+<name>+<hex 0x01 key ID>+base64(0x01 || seed)``) that ``NoteSigner`` reads.

``open_cosigned_checkpoint`` is what a verifier who requires witnesses calls: the log's
signature must verify under the pinned log key, every line of a pinned witness key must
verify, and at least ``quorum`` distinct pinned witnesses must have cosigned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .checkpoint import (
    _HEX8,
    ALG_ED25519,
    Checkpoint,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    _b64decode,
    _b64encode,
    is_valid_key_name,
    open_note,
)
from .errors import KeyMalformedError, NoteMalformedError, NoteUnverifiedError, QuorumNotMetError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "WitnessedCheckpoint",
    "cosignature_key_id",
    "cosignature_timestamp",
    "cosigned_message",
    "open_cosigned_checkpoint",
]

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1
_HEADER = "cosignature/v1\n"
_SIGNATURE_SIZE = 8 + 64


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(name || "\\n" || 0x04 || public_key)[:4]``."""
    data = name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    return hashlib.sha256(data).digest()[:4]


def cosigned_message(note_text: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header line, ``time`` line, then the checkpoint text."""
    _check_timestamp(timestamp)
    if not note_text.endswith("\n"):
        raise NoteMalformedError("note text must end with a newline")
    return f"{_HEADER}time {timestamp}\n{note_text}".encode()


def cosignature_timestamp(signature: bytes) -> int:
    """The timestamp a cosignature carries (``signature`` is what follows the key ID)."""
    if len(signature) != _SIGNATURE_SIZE:
        raise NoteMalformedError(f"a cosignature/v1 signature is {_SIGNATURE_SIZE} bytes")
    timestamp = int.from_bytes(signature[:8], "big")
    _check_timestamp(timestamp)
    return timestamp


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteMalformedError("a cosignature timestamp is an integer")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteMalformedError("a cosignature timestamp is in 0..2**63-1")


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A pinned witness key: checks cosignature/v1 lines (a `SignatureVerifier`)."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyMalformedError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise KeyMalformedError("Ed25519 public key must be 32 bytes")
        if self.key_id != cosignature_key_id(self.name, self.public_key):
            raise KeyMalformedError("cosignature key ID does not match name and public key")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> CosignatureVerifier:
        return cls(name, cosignature_key_id(name, public_key), public_key)

    @classmethod
    def from_string(cls, vkey: str) -> CosignatureVerifier:
        """Parse a vkey of type 0x04, or an Ed25519 note vkey (0x01) of the same key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise KeyMalformedError("witness key must be <name>+<keyid>+<key>")
        name, hex_id, b64 = parts
        if not _HEX8.fullmatch(hex_id) or not is_valid_key_name(name):
            raise KeyMalformedError("malformed witness key name or key ID")
        try:
            raw = _b64decode(b64)
        except ValueError as exc:
            raise KeyMalformedError("witness key data is not base64") from exc
        if len(raw) != 33 or raw[0] not in (ALG_COSIGNATURE_V1, ALG_ED25519):
            raise KeyMalformedError("witness key is not an Ed25519 cosignature (0x04) key")
        if raw[0] == ALG_ED25519:
            if NoteVerifier.from_public_key(name, raw[1:]).key_id != bytes.fromhex(hex_id):
                raise KeyMalformedError("witness key ID does not match the key")
            return cls.from_public_key(name, raw[1:])
        if cosignature_key_id(name, raw[1:]) != bytes.fromhex(hex_id):
            raise KeyMalformedError("witness key ID does not match the key")
        return cls(name, bytes.fromhex(hex_id), raw[1:])

    def to_string(self) -> str:
        raw = _b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """``message`` is the checkpoint's note text; ``signature`` timestamp || Ed25519."""
        if len(signature) != _SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        signed = f"{_HEADER}time {timestamp}\n".encode() + message
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature[8:], signed)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class CosignatureSigner:
    """A witness's cosigning key (an Ed25519 seed and the witness's name)."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyMalformedError(f"invalid key name {self.name!r}")
        if len(self.seed) != 32:
            raise KeyMalformedError("Ed25519 seed must be 32 bytes")

    def __repr__(self) -> str:
        return f"CosignatureSigner(name={self.name!r}, key_id={self.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        return cls(name, NoteSigner.generate(name).seed)

    @classmethod
    def from_string(cls, skey: str) -> CosignatureSigner:
        """The Go note signer form ``PRIVATE+KEY+<name>+<id>+<b64>`` (as `NoteSigner`)."""
        signer = NoteSigner.from_string(skey.strip())
        return cls(signer.name, signer.seed)

    def to_string(self) -> str:
        return NoteSigner(self.name, self.seed).to_string()

    @property
    def public_key(self) -> bytes:
        return NoteSigner(self.name, self.seed).public_key

    @property
    def key_id(self) -> bytes:
        return cosignature_key_id(self.name, self.public_key)

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier.from_public_key(self.name, self.public_key)

    def cosign(self, note_text: str, timestamp: int) -> NoteSignature:
        """The cosignature of a checkpoint's note text, made at ``timestamp``."""
        message = cosigned_message(note_text, timestamp)
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)
        return NoteSignature(self.name, self.key_id, timestamp.to_bytes(8, "big") + signature)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One verified cosignature: whose, and when the witness made it."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A checkpoint the log signed, with the pinned witnesses' verified cosignatures."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]


def open_cosigned_checkpoint(
    note: str | bytes,
    log_key: NoteVerifier,
    witness_keys: Iterable[CosignatureVerifier],
    *,
    quorum: int,
    origin: str | None = None,
) -> WitnessedCheckpoint:
    """Verify a checkpoint under the pinned log key and at least ``quorum`` pinned witnesses.

    Lines of unknown keys are ignored; a line of a pinned key that does not verify rejects
    the note (as for the log's own signature); one witness counts once however many lines
    it left. Raises ``NoteUnverifiedError`` (``QuorumNotMetError`` for too few witnesses).
    """
    witnesses: Sequence[CosignatureVerifier] = tuple(witness_keys)
    if quorum < 0 or quorum > len(witnesses):
        raise ValueError(f"a quorum of {quorum} cannot be met by {len(witnesses)} witness keys")
    opened = open_note(note, [log_key, *witnesses])
    if not any(
        sig.name == log_key.name and sig.key_id == log_key.key_id for sig in opened.signatures
    ):
        raise NoteUnverifiedError("the checkpoint is not signed by the pinned log key")
    checkpoint = Checkpoint.from_text(opened.text)
    expected = log_key.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteUnverifiedError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}"
        )
    pinned = {(w.name, w.key_id) for w in witnesses}
    cosignatures = tuple(
        Cosignature(sig.name, sig.key_id, cosignature_timestamp(sig.signature))
        for sig in opened.signatures
        if (sig.name, sig.key_id) in pinned
    )
    if len(cosignatures) < quorum:
        raise QuorumNotMetError(
            f"{len(cosignatures)} of the {quorum} required witness cosignatures "
            f"(pinned witnesses: {', '.join(w.name for w in witnesses) or 'none'})",
            found=len(cosignatures),
            required=quorum,
        )
    return WitnessedCheckpoint(checkpoint, cosignatures)

"""C2SP signed notes (Ed25519) and tlog-checkpoint tree heads: sign, parse, verify.

Formats (c2sp.org/signed-note, c2sp.org/tlog-checkpoint, Go x/mod/sumdb/note keys):

* note: ``text`` (ends in "\\n") + "\\n" + one or more lines
  ``"— " <key name> " " base64(4-byte key ID || signature) "\\n"``; the signed message is
  ``text`` including its final newline. Valid UTF-8, no control characters but "\\n".
* Ed25519 key ID: ``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``.
* verifier key: ``<name>+<8 hex key ID>+base64(0x01 || public key)``;
  signer key: ``PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 || 32-byte seed)``.
* checkpoint text: ``<origin>\\n<tree size, decimal>\\n<base64 root hash>\\n`` then optional
  non-empty extension lines.

Parsing follows the Go reference (``note.Open``): at most 100 signatures, signatures from
unknown keys are ignored, a bad signature from a known key rejects the whole note, and a
note with no verified signature from a trusted key is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .errors import (
    CheckpointMalformedError,
    KeyMalformedError,
    NoteMalformedError,
    NoteUnverifiedError,
)
from .merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "SignatureVerifier",
    "SignedNote",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
#: Go's limit; C2SP requires accepting at least 16.
MAX_SIGNATURES = 100
_SIG_PREFIX = "\u2014 "  # em dash, space
_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _b64decode(text: str) -> bytes:
    """Standard, padded base64 only (no whitespace, no URL alphabet)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("invalid base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode whitespace, no '+' (signed-note key name rule)."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """``SHA-256(name || "\\n" || alg || public_key)[:4]`` — the 4-byte key ID."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


class SignatureVerifier(Protocol):
    """What `open_note` needs of a trusted key: the (name, key ID) pair its signature lines
    carry, and a check of one signature over the note text. `NoteVerifier` is the log's
    Ed25519 key; `cosignature.CosignatureVerifier` a witness's timestamped cosigning key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A pinned Ed25519 verifier key (name, key ID, public key)."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyMalformedError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise KeyMalformedError("Ed25519 public key must be 32 bytes")
        if self.key_id != key_id(self.name, ALG_ED25519, self.public_key):
            raise KeyMalformedError("key ID does not match name and public key")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> NoteVerifier:
        return cls(name, key_id(name, ALG_ED25519, public_key), public_key)

    @classmethod
    def from_string(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || pubkey)>``."""
        parts = vkey.split("+", 2)  # base64 may itself contain "+"
        if len(parts) != 3:
            raise KeyMalformedError("verifier key must be <name>+<keyid>+<key>")
        name, hex_id, b64 = parts
        if not _HEX8.fullmatch(hex_id) or not is_valid_key_name(name):
            raise KeyMalformedError("malformed verifier key name or key ID")
        try:
            raw = _b64decode(b64)
        except ValueError as exc:
            raise KeyMalformedError("verifier key data is not base64") from exc
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise KeyMalformedError("verifier key is not an Ed25519 (0x01) key")
        if key_id(name, ALG_ED25519, raw[1:]) != bytes.fromhex(hex_id):
            raise KeyMalformedError("verifier key ID does not match the key")
        return cls(name, bytes.fromhex(hex_id), raw[1:])

    def to_string(self) -> str:
        raw = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """An Ed25519 note signing key. ``repr`` never shows the seed."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyMalformedError(f"invalid key name {self.name!r}")
        if len(self.seed) != 32:
            raise KeyMalformedError("Ed25519 seed must be 32 bytes")

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        return cls(name, seed)

    @classmethod
    def from_string(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise KeyMalformedError("signer key must be PRIVATE+KEY+<name>+<keyid>+<key>")
        _, _, name, hex_id, b64 = parts
        if not _HEX8.fullmatch(hex_id) or not is_valid_key_name(name):
            raise KeyMalformedError("malformed signer key name or key ID")
        try:
            raw = _b64decode(b64)
        except ValueError as exc:
            raise KeyMalformedError("signer key data is not base64") from exc
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise KeyMalformedError("signer key is not an Ed25519 (0x01) key")
        signer = cls(name, raw[1:])
        if signer.key_id != bytes.fromhex(hex_id):
            raise KeyMalformedError("signer key ID does not match the derived public key")
        return signer

    def to_string(self) -> str:
        raw = _b64encode(bytes([ALG_ED25519]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{raw}"

    @property
    def public_key(self) -> bytes:
        priv = Ed25519PrivateKey.from_private_bytes(self.seed)
        return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, ALG_ED25519, self.public_key)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_public_key(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A parsed note: its text (signed message) and signatures in note order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)


def _as_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteMalformedError("note is not valid UTF-8") from exc
    try:
        data.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteMalformedError("note is not valid UTF-8") from exc
    return data


def parse_note(data: str | bytes) -> SignedNote:
    """Split a note into text and signatures, checking syntax only (no verification)."""
    msg = _as_text(data)
    if any(ch < " " and ch != "\n" for ch in msg):
        raise NoteMalformedError("note contains a control character")
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteMalformedError("note has no blank line before its signatures")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteMalformedError("note has no signature lines, or they do not end in newline")
    sigs: list[NoteSignature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_SIG_PREFIX):
            raise NoteMalformedError("signature line does not start with an em dash and space")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64 or not is_valid_key_name(name):
            raise NoteMalformedError("malformed signature line")
        try:
            raw = _b64decode(b64)
        except ValueError as exc:
            raise NoteMalformedError("signature is not base64") from exc
        if len(raw) < 5:
            raise NoteMalformedError("signature too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
        if len(sigs) > MAX_SIGNATURES:
            raise NoteMalformedError(f"note has more than {MAX_SIGNATURES} signatures")
    return SignedNote(text, tuple(sigs))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign ``text`` (which must end in a newline) with each signer, in order."""
    if not text.endswith("\n"):
        raise NoteMalformedError("note text must end with a newline")
    if not signers:
        raise ValueError("at least one signer is needed")
    _as_text(text)
    if any(ch < " " and ch != "\n" for ch in text):
        raise NoteMalformedError("note text contains a control character")
    message = text.encode("utf-8")
    sigs = tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers)
    note = SignedNote(text, sigs).encode()
    if parse_note(note).text != text:  # never emit a note that reads back differently
        raise NoteMalformedError("note text does not survive a round trip")
    return note


def open_note(data: str | bytes, verifiers: Iterable[SignatureVerifier]) -> SignedNote:
    """Parse and verify a note against trusted keys.

    Returns the note with only the signatures that verified. Unknown keys are ignored;
    a known key whose signature fails rejects the note; no verified signature rejects it.
    """
    note = parse_note(data)
    known: dict[tuple[str, bytes], SignatureVerifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known and known[(v.name, v.key_id)] != v:
            raise NoteUnverifiedError(f"ambiguous key {v.name}+{v.key_id.hex()}")
        known[(v.name, v.key_id)] = v
    message = note.text.encode("utf-8")
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not verifier.verify(message, sig.signature):
            raise NoteUnverifiedError(f"invalid signature for key {sig.name}+{sig.key_id.hex()}")
        verified.append(sig)
    if not verified:
        raise NoteUnverifiedError("note has no verifiable signature from a trusted key")
    return SignedNote(note.text, tuple(verified))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointMalformedError("origin must be one non-empty line")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointMalformedError("tree size must be an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointMalformedError("tree size must be a uint64")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointMalformedError(f"root hash must be {HASH_SIZE} bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise CheckpointMalformedError("extension lines must be non-empty single lines")

    def text(self) -> str:
        """The exact note text that is signed."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text strictly (canonical size and base64, 32-byte root)."""
        if not text.endswith("\n"):
            raise CheckpointMalformedError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointMalformedError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointMalformedError("tree size is not a decimal without leading zeros")
        try:
            root = _b64decode(root_text)
        except ValueError as exc:
            raise CheckpointMalformedError("root hash is not base64") from exc
        if _b64encode(root) != root_text:
            raise CheckpointMalformedError("root hash is not canonical base64")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The signed note for a checkpoint (the exact text ``/audit/checkpoints`` serves)."""
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(
    note: str | bytes, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a checkpoint note with a pinned key and parse its body.

    ``origin`` defaults to the key name (C2SP: the log's key name SHOULD match its origin);
    pass the expected origin explicitly if they differ.
    """
    opened = open_note(note, [verifier])
    checkpoint = Checkpoint.from_text(opened.text)
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteUnverifiedError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}"
        )
    return checkpoint

"""Signed erasure receipts: JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037), JWKS, evidence.

The retention service signs one receipt when an erasure request reaches ``verified``; a data
subject or an auditor checks it later, offline, without trusting the service:

1. the **signature**: a JWS compact serialization ``B64(header).B64(payload).B64(signature)``
   (base64url without padding), ``alg: EdDSA`` (Ed25519, RFC 8037), the key named by ``kid`` in
   the protected header and published in retention's ``/.well-known/jwks.json`` (RFC 7517; an
   ``OKP``/``Ed25519`` key whose ``kid`` is its RFC 7638 thumbprint). ``typ`` is
   ``RECEIPT_TYPE``, so no other document retention signs with the same key (a command, say)
   can pass for a receipt. A ``crit`` header is refused (this verifier understands no
   extension), as is any ``alg`` but ``EdDSA``;
2. the **evidence**: every service's ``audit_seq`` is the audit-log entry of that service's
   ``<service>.SubjectErased`` for this subject, and each one is proved (RFC 9162 inclusion
   proof) against the checkpoint inside the receipt, a C2SP signed note that must verify under
   the audit log's own pinned key. So the receipt can only name erasures the tamper-evident log
   holds.

Payload (JSON, serialised as RFC 8785 canonical bytes, exactly these members)::

    {request_id, subject_id, requested_at, verified_at,
     services: [{service, keys_shredded, records_deleted: {category: n}, categories_held: [..],
                 audit_seq}],
     held: [{category, legal_basis, hold_id, until}],
     checkpoint: {tree_size, root_hash, note}}

Timestamps are ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (as audit entries), ``until`` such a timestamp or
``null``, ``root_hash`` 64 lowercase hex digits. The module is sans-I/O: the caller (the
``mmgen`` CLI) fetches each entry and its inclusion proof; ``evidence_needed`` says which.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .checkpoint import NoteVerifier, open_checkpoint
from .entry import decode_uint, format_timestamp, parse_timestamp
from .errors import AuditLogError, EntryMalformedError
from .jcs import MAX_SAFE_INTEGER, canonicalize
from .verify import verify_entry_inclusion

__all__ = [
    "JWS_ALG",
    "RECEIPT_TYPE",
    "Ed25519Jwk",
    "ErasureReceipt",
    "JwsInvalidError",
    "ReceiptCheckpoint",
    "ReceiptHold",
    "ReceiptInvalidError",
    "ReceiptService",
    "ReceiptSigner",
    "ReceiptVerification",
    "b64url_decode",
    "b64url_encode",
    "check_receipt_evidence",
    "evidence_needed",
    "jwk_thumbprint",
    "jwks_document",
    "open_receipt",
    "parse_jwks",
    "sign_compact",
    "verify_compact",
    "verify_receipt",
]

JWS_ALG = "EdDSA"
#: The protected header's `typ`: marks the JWS as an erasure receipt (RFC 7515 §4.1.9).
RECEIPT_TYPE = "mmgen-erasure-receipt+jws"
#: Longest compact JWS accepted (a receipt names a handful of services and holds).
MAX_COMPACT_LENGTH = 256 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PAYLOAD_MEMBERS = frozenset(
    {"request_id", "subject_id", "requested_at", "verified_at", "services", "held", "checkpoint"}
)
_SERVICE_MEMBERS = frozenset(
    {"service", "keys_shredded", "records_deleted", "categories_held", "audit_seq"}
)
_HOLD_MEMBERS = frozenset({"category", "legal_basis", "hold_id", "until"})
_CHECKPOINT_MEMBERS = frozenset({"tree_size", "root_hash", "note"})


class JwsInvalidError(AuditLogError, ValueError):
    """A JWS or JWK is malformed, uses another algorithm, names an unknown key, or its
    signature does not verify."""


class ReceiptInvalidError(AuditLogError, ValueError):
    """A receipt payload breaks the receipt format, or its evidence does not hold."""


# --- base64url (RFC 7515 §2: no padding, URL-safe alphabet, nothing else) ---------------------


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: unpadded URL-safe alphabet only, and the canonical encoding of its bytes."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JwsInvalidError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwsInvalidError("not unpadded base64url") from exc
    if b64url_encode(raw) != text:  # non-zero trailing bits: two spellings of one value
        raise JwsInvalidError("base64url is not canonical")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object with no duplicate member names (RFC 7515 §5.2 step 4)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise JwsInvalidError(f"{what}: duplicate member {key!r}")
            out[key] = value
        return out

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, JwsInvalidError):
            raise
        raise JwsInvalidError(f"{what} is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise JwsInvalidError(f"{what} is not a JSON object")
    return value


# --- keys: JWK (RFC 8037 OKP), thumbprint (RFC 7638), JWKS (RFC 7517) -------------------------


def jwk_thumbprint(public_key: bytes) -> str:
    """RFC 7638 SHA-256 thumbprint of an Ed25519 public key (its required members only)."""
    if len(public_key) != 32:
        raise JwsInvalidError("an Ed25519 public key is 32 bytes")
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public_key)}
    return b64url_encode(hashlib.sha256(canonicalize(members)).digest())


@dataclass(frozen=True, slots=True)
class Ed25519Jwk:
    """A public Ed25519 verification key and its ``kid``."""

    kid: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid or len(self.kid) > 256:
            raise JwsInvalidError("kid must be a non-empty string of at most 256 characters")
        if len(self.public_key) != 32:
            raise JwsInvalidError("an Ed25519 public key is 32 bytes")

    @classmethod
    def of(cls, public_key: bytes) -> Ed25519Jwk:
        """The key with its thumbprint as ``kid``."""
        return cls(jwk_thumbprint(public_key), public_key)

    def to_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": JWS_ALG,
        }

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> Ed25519Jwk:
        """Parse a public JWK; refuses private members, other key types and other uses."""
        if not isinstance(jwk, Mapping):
            raise JwsInvalidError("a JWK is a JSON object")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise JwsInvalidError("not an OKP Ed25519 key")
        if "d" in jwk:
            raise JwsInvalidError("a published key set must not hold private key members")
        if jwk.get("alg", JWS_ALG) != JWS_ALG or jwk.get("use", "sig") != "sig":
            raise JwsInvalidError("key is not for EdDSA signatures")
        kid = jwk.get("kid")
        if not isinstance(kid, str):
            raise JwsInvalidError("the JWK has no kid")
        return cls(kid, b64url_decode(str(jwk.get("x", ""))))

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def jwks_document(keys: Iterable[Ed25519Jwk]) -> dict[str, list[dict[str, str]]]:
    """``{"keys": [...]}`` as served at ``/.well-known/jwks.json``."""
    return {"keys": [key.to_jwk() for key in keys]}


def parse_jwks(document: Mapping[str, Any] | str | bytes) -> dict[str, Ed25519Jwk]:
    """``kid`` → key of a JWKS; keys of other types are skipped (RFC 7517 §5), a kid twice is
    refused (which one would sign would be ambiguous)."""
    if isinstance(document, str | bytes):
        raw = document.encode("utf-8") if isinstance(document, str) else document
        document = _json_object(raw, "JWKS")
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise JwsInvalidError("a JWKS has a 'keys' array")
    out: dict[str, Ed25519Jwk] = {}
    for jwk in keys:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        key = Ed25519Jwk.from_jwk(jwk)
        if key.kid in out:
            raise JwsInvalidError(f"kid {key.kid!r} appears twice in the key set")
        out[key.kid] = key
    if not out:
        raise JwsInvalidError("the key set holds no Ed25519 key")
    return out


# --- JWS compact serialization ------------------------------------------------------------------


def sign_compact(payload: bytes, seed: bytes, header: Mapping[str, Any]) -> str:
    """``B64(header).B64(payload).B64(Ed25519(signing input))``; ``alg`` is set to EdDSA."""
    protected = {**header, "alg": JWS_ALG}
    head = b64url_encode(json.dumps(protected, separators=(",", ":"), sort_keys=True).encode())
    body = b64url_encode(payload)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(f"{head}.{body}".encode("ascii"))
    return f"{head}.{body}.{b64url_encode(signature)}"


def verify_compact(
    token: str, keys: Mapping[str, Ed25519Jwk] | Ed25519Jwk
) -> tuple[dict[str, Any], bytes]:
    """Check a compact JWS; returns its protected header and payload bytes.

    With a key set, the header's ``kid`` chooses the key (required); with a single key the
    ``kid``, if present, must be that key's. Raises ``JwsInvalidError`` on anything else.
    """
    if not isinstance(token, str) or len(token) > MAX_COMPACT_LENGTH:
        raise JwsInvalidError("a compact JWS is a string of bounded length")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsInvalidError("a compact JWS has three parts")
    head_b64, body_b64, sig_b64 = parts
    header = _json_object(b64url_decode(head_b64), "JWS protected header")
    if header.get("alg") != JWS_ALG:
        raise JwsInvalidError(f"alg {header.get('alg')!r} refused: only {JWS_ALG} is accepted")
    if "crit" in header:
        raise JwsInvalidError("critical header extensions are not understood")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JwsInvalidError("kid must be a string")
    if isinstance(keys, Ed25519Jwk):
        if kid is not None and kid != keys.kid:
            raise JwsInvalidError(f"signed with key {kid!r}, not the expected {keys.kid!r}")
        key = keys
    else:
        if kid is None:
            raise JwsInvalidError("the header names no kid")
        found = keys.get(kid)
        if found is None:
            raise JwsInvalidError(f"no key {kid!r} in the key set")
        key = found
    signature = b64url_decode(sig_b64)
    if len(signature) != 64:
        raise JwsInvalidError("an Ed25519 signature is 64 bytes")
    if not key.verify(f"{head_b64}.{body_b64}".encode("ascii"), signature):
        raise JwsInvalidError("signature does not verify")
    return header, b64url_decode(body_b64)


# --- the receipt ---------------------------------------------------------------------------------


def _str(value: Any, name: str, *, limit: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ReceiptInvalidError(f"{name}: a non-empty string of at most {limit} characters")
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ReceiptInvalidError(f"{name}: a non-negative integer")
    return value


def _timestamp(value: Any, name: str) -> str:
    try:
        parse_timestamp(value)
    except EntryMalformedError as exc:
        raise ReceiptInvalidError(f"{name}: {exc}") from exc
    return str(value)


def _members(obj: Any, expected: frozenset[str], name: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ReceiptInvalidError(f"{name}: a JSON object")
    if set(obj) != expected:
        missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected)
        raise ReceiptInvalidError(f"{name}: members missing {missing}, unexpected {extra}")
    return obj


def _categories(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ReceiptInvalidError(f"{name}: an array of categories")
    cats = tuple(_str(c, name, limit=64) for c in value)
    if list(cats) != sorted(set(cats)):
        raise ReceiptInvalidError(f"{name}: distinct categories in ascending order")
    return cats


@dataclass(frozen=True, slots=True)
class ReceiptService:
    """What one service did, and where the log records it."""

    service: str
    keys_shredded: int
    records_deleted: Mapping[str, int]
    categories_held: tuple[str, ...]
    audit_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "keys_shredded": self.keys_shredded,
            "records_deleted": dict(sorted(self.records_deleted.items())),
            "categories_held": sorted(self.categories_held),
            "audit_seq": self.audit_seq,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ReceiptService:
        o = _members(obj, _SERVICE_MEMBERS, "services[]")
        deleted = o["records_deleted"]
        if not isinstance(deleted, Mapping):
            raise ReceiptInvalidError("records_deleted: an object of counts per category")
        return cls(
            service=_str(o["service"], "service", limit=64),
            keys_shredded=_count(o["keys_shredded"], "keys_shredded"),
            records_deleted={
                _str(k, "records_deleted", limit=64): _count(v, f"records_deleted.{k}")
                for k, v in deleted.items()
            },
            categories_held=_categories(o["categories_held"], "categories_held"),
            audit_seq=_count(o["audit_seq"], "audit_seq"),
        )


@dataclass(frozen=True, slots=True)
class ReceiptHold:
    """A category kept under a legal hold, and why."""

    category: str
    legal_basis: str
    hold_id: str
    until: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "legal_basis": self.legal_basis,
            "hold_id": self.hold_id,
            "until": self.until,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ReceiptHold:
        o = _members(obj, _HOLD_MEMBERS, "held[]")
        until = o["until"]
        return cls(
            category=_str(o["category"], "held.category", limit=64),
            legal_basis=_str(o["legal_basis"], "held.legal_basis", limit=500),
            hold_id=_str(o["hold_id"], "held.hold_id"),
            until=None if until is None else _timestamp(until, "held.until"),
        )


@dataclass(frozen=True, slots=True)
class ReceiptCheckpoint:
    """The signed audit-log head every ``audit_seq`` is proved against."""

    tree_size: int
    root_hash: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash, "note": self.note}

    @classmethod
    def from_json(cls, obj: Any) -> ReceiptCheckpoint:
        o = _members(obj, _CHECKPOINT_MEMBERS, "checkpoint")
        root = o["root_hash"]
        if not isinstance(root, str) or not _HEX64.fullmatch(root):
            raise ReceiptInvalidError("checkpoint.root_hash: 64 lowercase hex digits")
        return cls(
            tree_size=_count(o["tree_size"], "checkpoint.tree_size"),
            root_hash=root,
            note=_str(o["note"], "checkpoint.note", limit=64 * 1024),
        )


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """The receipt's payload."""

    request_id: str
    subject_id: str
    requested_at: str
    verified_at: str
    services: tuple[ReceiptService, ...]
    held: tuple[ReceiptHold, ...]
    checkpoint: ReceiptCheckpoint

    def __post_init__(self) -> None:
        # Construction and parsing keep one shape: canonical timestamps, distinct services.
        try:
            object.__setattr__(self, "requested_at", format_timestamp(self.requested_at))
            object.__setattr__(self, "verified_at", format_timestamp(self.verified_at))
        except EntryMalformedError as exc:
            raise ReceiptInvalidError(str(exc)) from exc
        services = tuple(sorted(self.services, key=lambda s: s.service))
        object.__setattr__(self, "services", services)
        held = tuple(sorted(self.held, key=lambda h: (h.category, h.hold_id)))
        object.__setattr__(self, "held", held)
        names = [s.service for s in self.services]
        if len(names) != len(set(names)):
            raise ReceiptInvalidError("a service appears twice")
        seqs = [s.audit_seq for s in self.services]
        if len(seqs) != len(set(seqs)):
            raise ReceiptInvalidError("two services name the same audit_seq")
        if any(seq >= self.checkpoint.tree_size for seq in seqs):
            raise ReceiptInvalidError("an audit_seq lies beyond the checkpoint's tree size")

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "subject_id": self.subject_id,
            "requested_at": self.requested_at,
            "verified_at": self.verified_at,
            "services": [s.to_json() for s in sorted(self.services, key=lambda s: s.service)],
            "held": [h.to_json() for h in sorted(self.held, key=lambda h: (h.category, h.hold_id))],
            "checkpoint": self.checkpoint.to_json(),
        }

    def payload_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: one byte form per receipt."""
        return canonicalize(self.to_json())

    @classmethod
    def from_json(cls, obj: Any) -> ErasureReceipt:
        o = _members(obj, _PAYLOAD_MEMBERS, "receipt")
        services, held = o["services"], o["held"]
        if not isinstance(services, list) or not isinstance(held, list):
            raise ReceiptInvalidError("services and held are arrays")
        return cls(
            request_id=_str(o["request_id"], "request_id"),
            subject_id=_str(o["subject_id"], "subject_id"),
            requested_at=_timestamp(o["requested_at"], "requested_at"),
            verified_at=_timestamp(o["verified_at"], "verified_at"),
            services=tuple(ReceiptService.from_json(s) for s in services),
            held=tuple(ReceiptHold.from_json(h) for h in held),
            checkpoint=ReceiptCheckpoint.from_json(o["checkpoint"]),
        )


class ReceiptSigner:
    """Retention's receipt signing key (an Ed25519 seed); ``repr`` never shows it."""

    def __init__(self, seed: bytes, kid: str | None = None) -> None:
        if len(seed) != 32:
            raise JwsInvalidError("an Ed25519 seed is 32 bytes")
        self._seed = seed
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        self.jwk = Ed25519Jwk(kid, public) if kid else Ed25519Jwk.of(public)

    def __repr__(self) -> str:
        return f"ReceiptSigner(kid={self.jwk.kid!r})"

    @property
    def kid(self) -> str:
        return self.jwk.kid

    def sign(self, receipt: ErasureReceipt) -> str:
        return sign_compact(
            receipt.payload_bytes(), self._seed, {"kid": self.kid, "typ": RECEIPT_TYPE}
        )

    def sign_payload(self, payload: bytes, header: Mapping[str, Any]) -> str:
        """Sign other bytes under this key with a ``typ`` of their own (``kid`` is added)."""
        if header.get("typ") in (None, RECEIPT_TYPE):
            raise JwsInvalidError("another document needs a typ of its own")
        return sign_compact(payload, self._seed, {**header, "kid": self.kid})


def open_receipt(token: str, keys: Mapping[str, Ed25519Jwk] | Ed25519Jwk) -> ErasureReceipt:
    """Verify the signature and ``typ``, then parse the payload strictly."""
    header, payload = verify_compact(token, keys)
    if header.get("typ") != RECEIPT_TYPE:
        raise JwsInvalidError(f"typ {header.get('typ')!r} is not an erasure receipt")
    try:
        obj = _json_object(payload, "receipt payload")
    except JwsInvalidError as exc:
        raise ReceiptInvalidError(str(exc)) from exc
    receipt = ErasureReceipt.from_json(obj)
    if receipt.payload_bytes() != payload:
        raise ReceiptInvalidError("payload is not in canonical form")
    return receipt


def evidence_needed(receipt: ErasureReceipt) -> list[tuple[int, int]]:
    """``(seq, tree_size)`` pairs: fetch ``/audit/entries/{seq}`` and
    ``/audit/proofs/inclusion?seq=&tree_size=`` for each."""
    size = receipt.checkpoint.tree_size
    return [(s.audit_seq, size) for s in sorted(receipt.services, key=lambda s: s.audit_seq)]


def check_receipt_evidence(
    receipt: ErasureReceipt,
    log_key: NoteVerifier | str,
    evidence: Mapping[int, tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    origin: str | None = None,
) -> None:
    """Raise unless every ``audit_seq`` is its service's ``SubjectErased`` of this subject,
    proved against the receipt's checkpoint, which the audit log's pinned key signed.

    ``evidence`` maps each seq to ``(entry, inclusion proof)`` as the audit API serves them.
    """
    key = log_key if isinstance(log_key, NoteVerifier) else NoteVerifier.from_string(log_key)
    try:
        checkpoint = open_checkpoint(receipt.checkpoint.note, key, origin=origin)
    except AuditLogError as exc:
        raise ReceiptInvalidError(f"checkpoint note refused: {exc}") from exc
    if checkpoint.size != receipt.checkpoint.tree_size:
        raise ReceiptInvalidError("checkpoint.tree_size differs from the signed note")
    if checkpoint.root_hash.hex() != receipt.checkpoint.root_hash:
        raise ReceiptInvalidError("checkpoint.root_hash differs from the signed note")
    for service in receipt.services:
        seq = service.audit_seq
        if seq not in evidence:
            raise ReceiptInvalidError(f"no entry and proof for audit_seq {seq}")
        entry, proof = evidence[seq]
        try:
            if decode_uint(entry.get("seq"), "seq") != seq:
                raise ReceiptInvalidError(f"the entry given for audit_seq {seq} is another one")
            verify_entry_inclusion(entry, proof, checkpoint)
        except ReceiptInvalidError:
            raise
        except AuditLogError as exc:
            raise ReceiptInvalidError(f"audit_seq {seq}: {exc}") from exc
        expected_type = f"{service.service}.SubjectErased"
        if (
            entry.get("event_type") != expected_type
            or entry.get("producer") != service.service
            or entry.get("action") != "erase"
        ):
            raise ReceiptInvalidError(
                f"audit_seq {seq} is {entry.get('event_type')!r}, not {expected_type!r}"
            )
        if entry.get("subject_id") != receipt.subject_id:
            raise ReceiptInvalidError(f"audit_seq {seq} is about another subject")


@dataclass(frozen=True, slots=True)
class ReceiptVerification:
    """Outcome of ``verify_receipt``: ``code`` is ``signature`` or ``evidence`` on failure."""

    valid: bool
    receipt: ErasureReceipt | None
    code: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "code": self.code,
            "reason": self.reason,
            "receipt": None if self.receipt is None else self.receipt.to_json(),
        }


def verify_receipt(
    token: str,
    *,
    keys: Mapping[str, Ed25519Jwk] | Ed25519Jwk,
    log_key: NoteVerifier | str,
    evidence: Mapping[int, tuple[Mapping[str, Any], Mapping[str, Any]]],
    origin: str | None = None,
) -> ReceiptVerification:
    """Both checks, as a verdict rather than an exception (what ``mmgen receipt verify`` prints)."""
    try:
        receipt = open_receipt(token, keys)
    except AuditLogError as exc:
        return ReceiptVerification(False, None, "signature", str(exc))
    try:
        check_receipt_evidence(receipt, log_key, evidence, origin=origin)
    except AuditLogError as exc:
        return ReceiptVerification(False, receipt, "evidence", str(exc))
    return ReceiptVerification(True, receipt)

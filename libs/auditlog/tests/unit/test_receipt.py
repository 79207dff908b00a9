"""Erasure receipts: RFC 8037's JWS vectors, strict JWS/JWKS parsing, evidence against the log."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.memory import InMemoryNodeStore
from mmgen.auditlog.receipt import (
    RECEIPT_TYPE,
    Ed25519Jwk,
    ErasureReceipt,
    JwsInvalidError,
    ReceiptCheckpoint,
    ReceiptHold,
    ReceiptInvalidError,
    ReceiptService,
    ReceiptSigner,
    b64url_decode,
    b64url_encode,
    check_receipt_evidence,
    evidence_needed,
    jwk_thumbprint,
    jwks_document,
    open_receipt,
    parse_jwks,
    sign_compact,
    verify_compact,
    verify_receipt,
)

# RFC 8037 Appendix A.1-A.4 (the Ed25519 key, its thumbprint, and a JWS it signs).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_PAYLOAD = b"Example of Ed25519 signing"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

ORIGIN = "audit.mmgen.test/log"
LOG_SIGNER = NoteSigner.generate(ORIGIN)
LOG_KEY = LOG_SIGNER.verifier().to_string()
T0 = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
SUBJECT = "0195f3a0-0000-7000-8000-00000000aaaa"
OTHER = "0195f3a0-0000-7000-8000-00000000bbbb"


# --- RFC 8037 vectors ------------------------------------------------------------------------


def test_rfc8037_public_key_and_thumbprint() -> None:
    signer = ReceiptSigner(b64url_decode(RFC8037_D))
    assert b64url_encode(signer.jwk.public_key) == RFC8037_X
    assert jwk_thumbprint(b64url_decode(RFC8037_X)) == RFC8037_THUMBPRINT
    assert signer.kid == RFC8037_THUMBPRINT


def test_rfc8037_jws_is_reproduced_byte_for_byte() -> None:
    assert sign_compact(RFC8037_PAYLOAD, b64url_decode(RFC8037_D), {}) == RFC8037_JWS


def test_rfc8037_jws_verifies_and_tampering_fails() -> None:
    key = Ed25519Jwk("rfc8037", b64url_decode(RFC8037_X))
    header, payload = verify_compact(RFC8037_JWS, key)
    assert header == {"alg": "EdDSA"}
    assert payload == RFC8037_PAYLOAD
    head, body, sig = RFC8037_JWS.split(".")
    other_body = b64url_encode(b"Example of Ed25519 signinG")
    with pytest.raises(JwsInvalidError, match="does not verify"):
        verify_compact(f"{head}.{other_body}.{sig}", key)
    flipped = bytearray(b64url_decode(sig))
    flipped[0] ^= 1
    with pytest.raises(JwsInvalidError, match="does not verify"):
        verify_compact(f"{head}.{body}.{b64url_encode(bytes(flipped))}", key)
    # A key set needs a kid to choose by; the vector names none.
    with pytest.raises(JwsInvalidError, match="no kid"):
        verify_compact(RFC8037_JWS, {"rfc8037": key})


# --- JWS and JWKS strictness -----------------------------------------------------------------


def _forge(header: dict[str, Any], payload: bytes, seed: bytes) -> str:
    """A JWS with exactly `header` (no alg forced), signed by `seed`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    head = b64url_encode(json.dumps(header).encode())
    body = b64url_encode(payload)
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url_encode(sig)}"


SEED = bytes(range(32))
SIGNER = ReceiptSigner(SEED)
KEYS = {SIGNER.kid: SIGNER.jwk}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "none", "kid": SIGNER.kid}, "only EdDSA"),
        ({"alg": "ES256", "kid": SIGNER.kid}, "only EdDSA"),
        ({"kid": SIGNER.kid}, "only EdDSA"),
        ({"alg": "EdDSA", "kid": SIGNER.kid, "crit": ["exp"], "exp": 1}, "critical"),
        ({"alg": "EdDSA", "kid": "someone-else"}, "no key"),
        ({"alg": "EdDSA", "kid": 7}, "kid must be a string"),
    ],
)
def test_headers_that_are_refused(header: dict[str, Any], message: str) -> None:
    with pytest.raises(JwsInvalidError, match=message):
        verify_compact(_forge(header, b"{}", SEED), KEYS)


def test_malformed_compact_forms_are_refused() -> None:
    good = SIGNER.sign_payload(b"x", {"typ": "other"})
    head, body, sig = good.split(".")
    for token in (
        f"{head}.{body}",
        f"{head}.{body}.{sig}.x",
        f"{head}=.{body}.{sig}",  # padding
        f"{head}.{body}.{sig[:-2]}",  # short signature
        f"{head}.{body}+.{sig}",  # not the URL alphabet
        "e30." + f"{body}.{sig}",  # `{}`: no alg
    ):
        with pytest.raises(JwsInvalidError):
            verify_compact(token, KEYS)
    duplicated = b64url_encode(b'{"alg":"EdDSA","alg":"none","kid":"k"}')
    with pytest.raises(JwsInvalidError, match="duplicate"):
        verify_compact(f"{duplicated}.{body}.{sig}", KEYS)


def test_non_canonical_base64url_is_refused() -> None:
    # "QR" and "QQ" decode to the same byte; only "QQ" is its canonical spelling.
    assert b64url_decode("QQ") == b"A"
    with pytest.raises(JwsInvalidError, match="canonical"):
        b64url_decode("QR")


def test_jwks_round_trip_and_refusals() -> None:
    other = ReceiptSigner(bytes(32))
    document = jwks_document([SIGNER.jwk, other.jwk])
    assert document["keys"][0] == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(SIGNER.jwk.public_key),
        "kid": SIGNER.kid,
        "use": "sig",
        "alg": "EdDSA",
    }
    parsed = parse_jwks(json.dumps({"keys": [*document["keys"], {"kty": "RSA", "n": "x"}]}))
    assert parsed == {SIGNER.kid: SIGNER.jwk, other.kid: other.jwk}
    with pytest.raises(JwsInvalidError, match="private"):
        parse_jwks({"keys": [{**document["keys"][0], "d": b64url_encode(SEED)}]})
    with pytest.raises(JwsInvalidError, match="twice"):
        parse_jwks({"keys": [document["keys"][0], document["keys"][0]]})
    with pytest.raises(JwsInvalidError, match="no Ed25519"):
        parse_jwks({"keys": []})
    with pytest.raises(JwsInvalidError, match="not for EdDSA"):
        parse_jwks({"keys": [{**document["keys"][0], "use": "enc"}]})


def test_signer_repr_hides_the_seed() -> None:
    assert SEED.hex() not in repr(SIGNER)
    assert b64url_encode(SEED) not in repr(SIGNER)


# --- receipts and their evidence -------------------------------------------------------------


def _log() -> tuple[list[dict[str, Any]], InMemoryNodeStore]:
    """An audit log: noise, then the four services' SubjectErased of SUBJECT, one of OTHER."""
    rows: list[tuple[str, str, str | None]] = [
        ("identity", "identity.UserRegistered", SUBJECT),
        ("projects", "projects.MessagePosted", SUBJECT),
        ("identity", "identity.SubjectErased", SUBJECT),
        ("consent", "consent.SubjectErased", SUBJECT),
        ("projects", "projects.SubjectErased", SUBJECT),
        ("profiles", "profiles.SubjectErased", SUBJECT),
        ("profiles", "profiles.SubjectErased", OTHER),
        ("retention", "retention.PrivacyRequestVerified", SUBJECT),
    ]
    builder, appender, store = ChainBuilder(), merkle.TreeAppender(), InMemoryNodeStore()
    entries = []
    for i, (producer, event_type, subject) in enumerate(rows):
        entry = builder.append(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"receipt-test-{i}"),
            producer=producer,
            producer_seq=i + 1,
            event_type=event_type,
            action="erase" if event_type.endswith("SubjectErased") else "create",
            subject_id=subject,
            resource={"type": "subject", "id": subject or "none"},
            occurred_at=T0 + timedelta(seconds=i),
            recorded_at=T0 + timedelta(seconds=i, milliseconds=5),
        )
        store.put(appender.append(entry.leaf_hash))
        entries.append(entry.to_json())
    return entries, store


ENTRIES, STORE = _log()
SIZE = len(ENTRIES)
ROOT = merkle.root_from_store(STORE, SIZE)
NOTE = sign_checkpoint(Checkpoint(ORIGIN, SIZE, ROOT), LOG_SIGNER)
SEQS = {"identity": 2, "consent": 3, "projects": 4, "profiles": 5}


def _receipt(**changes: Any) -> ErasureReceipt:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "subject_id": SUBJECT,
        "requested_at": T0 - timedelta(days=1),
        "verified_at": T0 + timedelta(seconds=9),
        "services": tuple(
            ReceiptService(
                service=name,
                keys_shredded=1,
                records_deleted={"contact": 2} if name == "identity" else {},
                categories_held=("payment",) if name == "projects" else (),
                audit_seq=seq,
            )
            for name, seq in SEQS.items()
        ),
        "held": (ReceiptHold("payment", "tax law: keep invoices 10 years", "hold-1", None),),
        "checkpoint": ReceiptCheckpoint(SIZE, ROOT.hex(), NOTE),
    }
    fields.update(changes)
    return ErasureReceipt(**fields)


def _evidence(size: int = SIZE) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    out = {}
    for seq in range(size):
        hashes = [h.hex() for h in merkle.inclusion_proof_from_store(STORE, seq, size)]
        out[seq] = (ENTRIES[seq], {"leaf_index": seq, "tree_size": size, "hashes": hashes})
    return out


def test_receipt_signs_verifies_and_round_trips() -> None:
    receipt = _receipt()
    token = SIGNER.sign(receipt)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": SIGNER.kid, "typ": RECEIPT_TYPE}
    opened = open_receipt(token, parse_jwks(jwks_document([SIGNER.jwk])))
    assert opened == receipt
    payload = json.loads(b64url_decode(token.split(".")[1]))
    assert set(payload) == {
        "request_id",
        "subject_id",
        "requested_at",
        "verified_at",
        "services",
        "held",
        "checkpoint",
    }
    assert payload["requested_at"] == "2027-01-30T09:00:00.000Z"
    assert payload["services"][0] == {
        "service": "consent",
        "keys_shredded": 1,
        "records_deleted": {},
        "categories_held": [],
        "audit_seq": 3,
    }
    assert payload["held"] == [
        {
            "category": "payment",
            "legal_basis": "tax law: keep invoices 10 years",
            "hold_id": "hold-1",
            "until": None,
        }
    ]
    assert evidence_needed(opened) == [(2, SIZE), (3, SIZE), (4, SIZE), (5, SIZE)]
    verdict = verify_receipt(token, keys=KEYS, log_key=LOG_KEY, evidence=_evidence())
    assert verdict.valid, verdict.reason
    assert verdict.to_json()["receipt"]["request_id"] == "req-1"


def test_tampered_payload_signature_and_kid_fail() -> None:
    token = SIGNER.sign(_receipt())
    head, body, sig = token.split(".")
    payload = json.loads(b64url_decode(body))
    payload["services"][0]["keys_shredded"] = 0
    forged_body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    verdict = verify_receipt(
        f"{head}.{forged_body}.{sig}", keys=KEYS, log_key=LOG_KEY, evidence=_evidence()
    )
    assert not verdict.valid
    assert verdict.code == "signature"
    assert "does not verify" in (verdict.reason or "")

    flipped = bytearray(b64url_decode(sig))
    flipped[-1] ^= 0x80
    with pytest.raises(JwsInvalidError, match="does not verify"):
        open_receipt(f"{head}.{body}.{b64url_encode(bytes(flipped))}", KEYS)

    # Another key's kid in the header: the set has no such key.
    other_head = b64url_encode(
        json.dumps({"alg": "EdDSA", "kid": "not-ours", "typ": RECEIPT_TYPE}).encode()
    )
    with pytest.raises(JwsInvalidError, match="no key"):
        open_receipt(f"{other_head}.{body}.{sig}", KEYS)
    # The kid of a key that is in the set, but not the one that signed.
    impostor = ReceiptSigner(bytes(32))
    swapped = b64url_encode(
        json.dumps({"alg": "EdDSA", "kid": impostor.kid, "typ": RECEIPT_TYPE}).encode()
    )
    both = {SIGNER.kid: SIGNER.jwk, impostor.kid: impostor.jwk}
    with pytest.raises(JwsInvalidError, match="does not verify"):
        open_receipt(f"{swapped}.{body}.{sig}", both)
    # Signed by a key the verifier does not trust at all.
    with pytest.raises(JwsInvalidError):
        open_receipt(impostor.sign(_receipt()), KEYS)


def test_a_document_of_another_type_is_not_a_receipt() -> None:
    command = SIGNER.sign_payload(_receipt().payload_bytes(), {"typ": "mmgen-command+jws"})
    with pytest.raises(JwsInvalidError, match="not an erasure receipt"):
        open_receipt(command, KEYS)
    with pytest.raises(JwsInvalidError, match="typ of its own"):
        SIGNER.sign_payload(b"{}", {"typ": RECEIPT_TYPE})


def test_payload_must_be_exact_and_canonical() -> None:
    good = _receipt().to_json()
    extra = {**good, "note": "trust me"}
    token = sign_compact(json.dumps(extra).encode(), SEED, {"kid": SIGNER.kid, "typ": RECEIPT_TYPE})
    with pytest.raises(ReceiptInvalidError, match="unexpected"):
        open_receipt(token, KEYS)
    spaced = json.dumps(good, indent=2).encode()  # same content, not the canonical bytes
    token = sign_compact(spaced, SEED, {"kid": SIGNER.kid, "typ": RECEIPT_TYPE})
    with pytest.raises(ReceiptInvalidError, match="canonical"):
        open_receipt(token, KEYS)
    for bad in (
        {**good, "verified_at": "yesterday"},
        {**good, "services": [{**good["services"][0], "keys_shredded": -1}]},
        {**good, "services": [{**good["services"][0], "keys_shredded": True}]},
        {**good, "checkpoint": {**good["checkpoint"], "root_hash": ROOT.hex().upper()}},
        {**good, "held": [{**good["held"][0], "until": "2030-01-01"}]},
    ):
        with pytest.raises(ReceiptInvalidError):
            ErasureReceipt.from_json(bad)


def test_receipt_shape_rules() -> None:
    twice = _receipt().services[0]
    with pytest.raises(ReceiptInvalidError, match="twice"):
        _receipt(services=(twice, twice))
    with pytest.raises(ReceiptInvalidError, match="beyond"):
        _receipt(checkpoint=ReceiptCheckpoint(3, ROOT.hex(), NOTE))


def _signed(receipt: ErasureReceipt) -> str:
    return SIGNER.sign(receipt)


def test_evidence_refuses_a_seq_that_is_not_the_services_erasure() -> None:
    services = [s for s in _receipt().services if s.service != "identity"]
    services.append(ReceiptService("identity", 1, {}, (), 0))  # seq 0 is UserRegistered
    verdict = verify_receipt(
        _signed(_receipt(services=tuple(services))),
        keys=KEYS,
        log_key=LOG_KEY,
        evidence=_evidence(),
    )
    assert not verdict.valid
    assert verdict.code == "evidence"
    assert "identity.UserRegistered" in (verdict.reason or "")


def test_evidence_refuses_another_subjects_erasure() -> None:
    services = [s for s in _receipt().services if s.service != "profiles"]
    services.append(ReceiptService("profiles", 1, {}, (), 6))  # profiles' erasure of OTHER
    with pytest.raises(ReceiptInvalidError, match="another subject"):
        check_receipt_evidence(_receipt(services=tuple(services)), LOG_KEY, _evidence())


def test_evidence_refuses_a_checkpoint_not_signed_by_the_log() -> None:
    rogue = NoteSigner.generate(ORIGIN)
    rogue_note = sign_checkpoint(Checkpoint(ORIGIN, SIZE, ROOT), rogue)
    receipt = _receipt(checkpoint=ReceiptCheckpoint(SIZE, ROOT.hex(), rogue_note))
    with pytest.raises(ReceiptInvalidError, match="checkpoint note refused"):
        check_receipt_evidence(receipt, LOG_KEY, _evidence())


def test_evidence_refuses_a_root_or_size_that_differs_from_the_note() -> None:
    with pytest.raises(ReceiptInvalidError, match="root_hash"):
        check_receipt_evidence(
            _receipt(checkpoint=ReceiptCheckpoint(SIZE, "ab" * 32, NOTE)), LOG_KEY, _evidence()
        )
    with pytest.raises(ReceiptInvalidError, match="tree_size"):
        check_receipt_evidence(
            _receipt(checkpoint=ReceiptCheckpoint(SIZE + 1, ROOT.hex(), NOTE)),
            LOG_KEY,
            _evidence(),
        )


def test_evidence_refuses_missing_altered_or_mismatched_proofs() -> None:
    receipt = _receipt()
    evidence = _evidence()
    del evidence[4]
    with pytest.raises(ReceiptInvalidError, match="no entry and proof for audit_seq 4"):
        check_receipt_evidence(receipt, LOG_KEY, evidence)

    evidence = _evidence()
    entry, proof = evidence[3]
    altered_entry = {**entry, "subject_id": OTHER}  # its hash no longer matches
    evidence[3] = (altered_entry, proof)
    with pytest.raises(ReceiptInvalidError, match="audit_seq 3"):
        check_receipt_evidence(receipt, LOG_KEY, evidence)

    evidence = _evidence()
    entry, proof = evidence[3]
    bad_hashes = list(proof["hashes"])
    bad_hashes[0] = "00" * 32
    evidence[3] = (entry, {**proof, "hashes": bad_hashes})
    with pytest.raises(ReceiptInvalidError, match="audit_seq 3"):
        check_receipt_evidence(receipt, LOG_KEY, evidence)

    evidence = _evidence()
    evidence[2] = evidence[3]  # the right proof of the wrong entry
    with pytest.raises(ReceiptInvalidError, match="another one"):
        check_receipt_evidence(receipt, LOG_KEY, evidence)

    smaller = _evidence(size=6)  # proofs against a tree the checkpoint does not describe
    with pytest.raises(ReceiptInvalidError, match="audit_seq"):
        check_receipt_evidence(receipt, LOG_KEY, smaller)

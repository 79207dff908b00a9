"""C2SP tlog-cosignature/v1: the spec's examples, upstream key vectors, signing and quorums."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mmgen.auditlog.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_note,
    parse_note,
    sign_checkpoint,
)
from mmgen.auditlog.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_key_id,
    cosignature_timestamp,
    cosigned_message,
    open_cosigned_checkpoint,
)
from mmgen.auditlog.errors import (
    KeyMalformedError,
    NoteMalformedError,
    NoteUnverifiedError,
    QuorumNotMetError,
)

CP = Path(__file__).resolve().parent.parent / "vectors" / "checkpoints"
VECTORS = json.loads((CP / "cosignature_v1.json").read_text(encoding="utf-8"))
NOTES = {v["id"]: v for v in json.loads((CP / "signed_notes.json").read_text())["vectors"]}
#: The tessera test log's key (signed_notes.json), reused as a fixed witness key so that
#: cosignatures are reproducible byte for byte (Ed25519 is deterministic).
FIXED_SKEY = NOTES["tessera-testdata-log"]["skey"]
ROOT = hashlib.sha256(b"root").digest()


def checkpoint_note(size: int = 5, root: bytes = ROOT) -> tuple[str, NoteSigner]:
    log = NoteSigner.from_string(NOTES["go-note-peterneumann"]["skey"])
    return sign_checkpoint(Checkpoint(log.name, size, root), log), log


def test_c2sp_cosigned_checkpoint_example_decodes_as_the_spec_says() -> None:
    example = VECTORS["c2sp_cosigned_checkpoint"]
    note = parse_note(example["note"])
    log_sig, witness_sig = note.signatures
    assert log_sig.name == "example.com/behind-the-sofa"
    assert witness_sig.name == example["witness_name"]
    assert witness_sig.key_id.hex() == example["witness_key_id"]
    assert 4 + len(witness_sig.signature) == example["signature_blob_bytes"]
    assert cosignature_timestamp(witness_sig.signature) == example["timestamp"]
    message = cosigned_message(note.text, example["timestamp"])
    assert message == example["cosigned_message"].encode()


def test_c2sp_witness_response_lines_are_cosignature_blobs() -> None:
    body = VECTORS["c2sp_add_checkpoint_response"]["body"]
    text = VECTORS["c2sp_cosigned_checkpoint"]["cosigned_message"].split("\n", 2)[2]
    note = parse_note(text + "\n" + body)
    assert len(note.signatures) == VECTORS["c2sp_add_checkpoint_response"]["lines"]
    # The example's bytes are placeholders (no real timestamps): the shape is what it shows.
    assert all(len(sig.key_id) + len(sig.signature) == 76 for sig in note.signatures)
    assert [sig.name for sig in note.signatures] == ["witness.example/w1"] * 2 + [
        "witness.example/w2"
    ]


@pytest.mark.parametrize("case", VECTORS["verifier_keys"], ids=lambda c: c["why"])
def test_upstream_verifier_keys(case: dict[str, object]) -> None:
    vkey = str(case["vkey"])
    if not case["valid"]:
        with pytest.raises(KeyMalformedError):
            CosignatureVerifier.from_string(vkey)
        return
    verifier = CosignatureVerifier.from_string(vkey)
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert verifier.name == name and verifier.public_key == raw[1:]
    # The cosignature key ID, recomputed here from the spec's formula.
    expected = hashlib.sha256(name.encode() + b"\n" + b"\x04" + raw[1:]).digest()[:4]
    assert verifier.key_id == expected
    if raw[0] == 0x04:
        assert verifier.key_id.hex() == hex_id and verifier.to_string() == vkey
    else:  # an Ed25519 note key: its own (0x01) ID in the string, converted to 0x04
        assert verifier.to_string().startswith(f"{name}+{expected.hex()}+B")


@pytest.mark.parametrize("case", VECTORS["timestamps"], ids=lambda c: str(c["timestamp"]))
def test_upstream_timestamps(case: dict[str, object]) -> None:
    blob = base64.b64decode(str(case["signature"]))
    if case["timestamp"] is None:
        with pytest.raises(NoteMalformedError):
            cosignature_timestamp(blob[4:])
        return
    assert blob[:4].hex() == case["key_id"]
    assert cosignature_timestamp(blob[4:]) == case["timestamp"]


def test_fixed_key_cosignature_is_reproducible_and_independently_verifiable() -> None:
    witness = CosignatureSigner.from_string(FIXED_SKEY)
    note, _ = checkpoint_note()
    text = parse_note(note).text
    sig = witness.cosign(text, 1_700_000_000)
    assert sig.line() == witness.cosign(text, 1_700_000_000).line()  # deterministic
    blob = base64.b64decode(sig.line().rsplit(" ", 1)[1])
    assert blob[:4] == cosignature_key_id(witness.name, witness.public_key)
    assert int.from_bytes(blob[4:12], "big") == 1_700_000_000
    signed = b"cosignature/v1\ntime 1700000000\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(blob[12:], signed)
    # The same key as a log key (type 0x01) has another ID: one never passes for the other.
    assert NoteSigner.from_string(FIXED_SKEY).key_id != witness.key_id
    opened = open_note(text + "\n" + sig.line(), [witness.verifier()])
    assert opened.signatures == (sig,)
    with pytest.raises(NoteUnverifiedError):
        open_note(text + "\n" + sig.line(), [NoteSigner.from_string(FIXED_SKEY).verifier()])


def test_cosignature_covers_timestamp_text_and_extension_lines() -> None:
    witness = CosignatureSigner.generate("witness.test/w1")
    text = "log.test\n7\n" + base64.b64encode(ROOT).decode() + "\nextension line\n"
    sig = witness.cosign(text, 42)
    verifier = witness.verifier()
    assert verifier.verify(text.encode(), sig.signature)
    assert not verifier.verify(text.replace("extension", "Extension").encode(), sig.signature)
    moved = (43).to_bytes(8, "big") + sig.signature[8:]
    assert not verifier.verify(text.encode(), moved)
    assert not verifier.verify(text.encode(), sig.signature[:-1])
    with pytest.raises(NoteMalformedError):
        cosigned_message(text, 2**63)


def test_quorum_of_pinned_witnesses() -> None:
    note, log = checkpoint_note()
    w1, w2, stranger = (CosignatureSigner.generate(f"w{i}.test/witness") for i in (1, 2, 3))
    text = parse_note(note).text
    cosigned = note + "".join(w.cosign(text, 1000 + i).line() for i, w in enumerate((w1, w2)))
    cosigned += stranger.cosign(text, 5).line()
    keys = [w1.verifier(), w2.verifier()]
    witnessed = open_cosigned_checkpoint(cosigned, log.verifier(), keys, quorum=2)
    assert witnessed.checkpoint.size == 5
    assert {(c.name, c.timestamp) for c in witnessed.cosignatures} == {
        ("w1.test/witness", 1000),
        ("w2.test/witness", 1001),
    }
    with pytest.raises(QuorumNotMetError) as short:
        open_cosigned_checkpoint(note + w1.cosign(text, 1).line(), log.verifier(), keys, quorum=2)
    assert (short.value.found, short.value.required) == (1, 2)
    # One witness twice counts once.
    twice = note + w1.cosign(text, 1).line() + w1.cosign(text, 2).line()
    with pytest.raises(QuorumNotMetError):
        open_cosigned_checkpoint(twice, log.verifier(), keys, quorum=2)
    # An unpinned witness does not count.
    with pytest.raises(QuorumNotMetError):
        open_cosigned_checkpoint(
            note + stranger.cosign(text, 1).line(), log.verifier(), keys, quorum=1
        )
    with pytest.raises(ValueError, match="quorum"):
        open_cosigned_checkpoint(note, log.verifier(), keys, quorum=3)


def test_a_pinned_witness_line_that_does_not_verify_rejects_the_head() -> None:
    note, log = checkpoint_note()
    w1 = CosignatureSigner.generate("w1.test/witness")
    other_text = parse_note(checkpoint_note(6)[0]).text
    forged = note + w1.cosign(other_text, 1).line()  # a cosignature of another head
    with pytest.raises(NoteUnverifiedError, match="invalid signature"):
        open_cosigned_checkpoint(forged, log.verifier(), [w1.verifier()], quorum=0)


def test_witness_lines_without_the_log_signature_are_refused() -> None:
    note, log = checkpoint_note()
    w1 = CosignatureSigner.generate("w1.test/witness")
    text = parse_note(note).text
    only_witness = text + "\n" + w1.cosign(text, 1).line()
    with pytest.raises(NoteUnverifiedError, match="log key"):
        open_cosigned_checkpoint(only_witness, log.verifier(), [w1.verifier()], quorum=1)
    other_log = NoteVerifier.from_public_key(log.name, NoteSigner.generate(log.name).public_key)
    with pytest.raises(NoteUnverifiedError):
        open_cosigned_checkpoint(note + w1.cosign(text, 1).line(), other_log, [], quorum=0)


def test_signer_string_round_trip_and_verifier_string() -> None:
    signer = CosignatureSigner.generate("witness.test/w1")
    again = CosignatureSigner.from_string(signer.to_string())
    assert again == signer and "seed" not in repr(signer)
    vkey = signer.verifier().to_string()
    assert CosignatureVerifier.from_string(vkey) == signer.verifier()
    assert vkey.split("+")[1] == signer.key_id.hex()
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04

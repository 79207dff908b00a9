"""C2SP signed notes and tlog-checkpoints: upstream vectors, the tessera log, malformed notes."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from mmgen.auditlog.errors import (
    CheckpointMalformedError,
    KeyMalformedError,
    NoteMalformedError,
    NoteUnverifiedError,
)

CP = Path(__file__).resolve().parent.parent / "vectors" / "checkpoints"
DATA = json.loads((CP / "signed_notes.json").read_text(encoding="utf-8"))
VEC = {v["id"]: v for v in DATA["vectors"]}
PETER = VEC["go-note-peterneumann"]
ENOCH = VEC["go-note-enochroot"]
TESSERA = VEC["tessera-testdata-log"]
LOG = CP / "tessera-testdata-log"
TEXT = PETER["text"]
PETER_SIG = PETER["note"][len(TEXT) + 1 :]
ENOCH_SIG = ENOCH["note"][len(TEXT) + 1 :]


@pytest.mark.parametrize(
    "vid", ["c2sp-signed-note-example", "go-note-peterneumann", "go-note-enochroot"]
)
def test_upstream_notes_verify(vid: str) -> None:
    vec = VEC[vid]
    verifier = NoteVerifier.from_string(vec["vkey"])
    assert verifier.to_string() == vec["vkey"]
    note = open_note(vec["note"], [verifier])
    assert note.signatures[0].name == verifier.name
    assert note.signatures[0].key_id == verifier.key_id
    assert parse_note(vec["note"]).encode() == vec["note"]


def test_signing_reproduces_the_go_signature_byte_for_byte() -> None:
    signer = NoteSigner.from_string(PETER["skey"])
    assert signer.to_string() == PETER["skey"]
    assert signer.verifier() == NoteVerifier.from_string(PETER["vkey"])
    assert sign_note(TEXT, [signer]) == PETER["note"]
    assert "AYEKF" not in repr(signer)  # the seed never shows in logs


def test_key_id_rule() -> None:
    v = NoteVerifier.from_string(PETER["vkey"])
    assert key_id(v.name, 1, v.public_key).hex() == "c74f20a3"


def test_two_signatures_unknown_one_ignored() -> None:
    msg = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    peter = NoteVerifier.from_string(PETER["vkey"])
    enoch = NoteVerifier.from_string(ENOCH["vkey"])
    assert [s.name for s in open_note(msg, [peter]).signatures] == ["PeterNeumann"]
    assert len(open_note(msg, [peter, enoch]).signatures) == 2
    with pytest.raises(NoteUnverifiedError, match="no verifiable"):
        open_note(msg, [])


def test_bad_signature_from_a_known_key_rejects_the_note() -> None:
    peter = NoteVerifier.from_string(PETER["vkey"])
    tampered = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteUnverifiedError, match="invalid signature"):
        open_note(tampered, [peter])
    with pytest.raises(NoteUnverifiedError):
        open_note(TEXT.replace("answer", "answr") + "\n" + PETER_SIG, [peter])


GO_BAD_MESSAGES = {
    "text only, no blank line/signature": TEXT,
    "text + blank line, no signature": TEXT + "\n",
    "signature line missing final newline": TEXT + "\n" + PETER_SIG[:-1],
    "leading 0x01 control byte": "\x01" + TEXT + "\n" + PETER_SIG,
    "leading 0xff (invalid UTF-8)": b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
    "key name containing a space ('Bad Name')": (
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")[:-1]
    ),
    "extra non-signature line after signatures": TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    "101 signatures (> Go limit 100)": TEXT + "\n" + PETER_SIG * 101,
}


def test_the_malformed_case_list_matches_the_vector_file() -> None:
    assert sorted(GO_BAD_MESSAGES) == sorted(VEC["go-note-malformed"]["cases"])


@pytest.mark.parametrize("case", sorted(GO_BAD_MESSAGES))
def test_go_malformed_notes_are_rejected(case: str) -> None:
    peter = NoteVerifier.from_string(PETER["vkey"])
    with pytest.raises(NoteMalformedError):
        open_note(GO_BAD_MESSAGES[case], [peter])


@pytest.mark.parametrize(
    "bad",
    [
        TEXT + "\n" + "- PeterNeumann " + PETER_SIG.split(" ", 2)[2],  # hyphen, not em dash
        TEXT + "\n" + "\u2014 PeterNeumann !!!notbase64\n",
        TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",  # shorter than key ID + 1 byte
        TEXT + "\n" + "\u2014 Peter+Neumann " + PETER_SIG.split(" ", 2)[2],
        TEXT + "\n" + "\u2014 PeterNeumann\n",
        "a\r\n\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),  # with final newline
    ],
)
def test_more_malformed_notes(bad: str) -> None:
    with pytest.raises(NoteMalformedError):
        parse_note(bad)


def test_up_to_100_signatures_are_accepted() -> None:
    peter = NoteVerifier.from_string(PETER["vkey"])
    assert len(open_note(TEXT + "\n" + PETER_SIG * 100, [peter]).signatures) == 1


def test_verifier_key_manglings_are_refused() -> None:
    vkey = PETER["vkey"]
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :]
        with pytest.raises(KeyMalformedError):
            NoteVerifier.from_string(mangled)
    for cut in (vkey[:-1], vkey[1:], vkey + "A", "PeterNeumann+c74f20a3"):
        with pytest.raises(KeyMalformedError):
            NoteVerifier.from_string(cut)


def test_signer_key_manglings_are_refused() -> None:
    skey = PETER["skey"]
    for i in range(len(skey)):
        mangled = skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :]
        with pytest.raises(KeyMalformedError):
            NoteSigner.from_string(mangled)


def _bundle_entries(n: int) -> list[bytes]:
    if n == 0:
        return []
    data = (LOG / "tile/entries/000.p" / str(n)).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">H", data, pos)
        out.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    assert pos == len(data)
    return out


@pytest.mark.parametrize("n", range(16))
def test_tessera_checkpoints_verify_and_match_entry_bundles(n: int) -> None:
    verifier = NoteVerifier.from_string(TESSERA["vkey"])
    note = (LOG / f"checkpoint.{n}").read_text(encoding="utf-8")
    cp = open_checkpoint(note, verifier)
    assert cp.origin == "example.com/log/testdata"
    assert cp.size == n
    entries = _bundle_entries(n)
    assert entries == [e.encode() for e in TESSERA["entries_ascii"][:n]]
    leaves = [merkle.hash_leaf(e) for e in entries]
    assert cp.root_hash == merkle.root_from_leaf_hashes(leaves)
    if n:
        tile = (LOG / "tile/0/000.p" / str(n)).read_bytes()
        assert tile == b"".join(leaves)
    # re-signing reproduces the upstream note exactly (Ed25519 is deterministic)
    assert sign_checkpoint(cp, NoteSigner.from_string(TESSERA["skey"])) == note


def test_empty_checkpoint_root_is_sha256_of_nothing() -> None:
    cp = Checkpoint.from_text(parse_note((LOG / "checkpoint.0").read_text()).text)
    assert cp.root_hash == merkle.EMPTY_ROOT
    assert base64.b64encode(cp.root_hash) == b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_checkpoint_with_wrong_pinned_key_or_origin_is_refused() -> None:
    note = (LOG / "checkpoint.5").read_text()
    other = NoteSigner.generate("example.com/log/testdata").verifier()
    with pytest.raises(NoteUnverifiedError):
        open_checkpoint(note, other)
    tessera = NoteVerifier.from_string(TESSERA["vkey"])
    with pytest.raises(NoteUnverifiedError, match="origin"):
        open_checkpoint(note, tessera, origin="example.com/another-log")


def test_c2sp_checkpoint_example_parses() -> None:
    note = parse_note(VEC["c2sp-checkpoint-example"]["note"])
    cp = Checkpoint.from_text(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    witness = note.signatures[1]
    assert witness.key_id.hex() == "8d66cf3f"
    assert int.from_bytes(witness.signature[:8], "big") == 1679315147
    assert len(witness.key_id + witness.signature) == 76


ROOT_B64 = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"origin\n012\n{ROOT_B64}\n",  # leading zero
        f"origin\n-1\n{ROOT_B64}\n",
        f"origin\n{2**64}\n{ROOT_B64}\n",  # beyond uint64
        f"origin\n 12\n{ROOT_B64}\n",
        f"\n12\n{ROOT_B64}\n",  # empty origin
        f"origin\n12\n{base64.b64encode(bytes(31)).decode()}\n",  # 31-byte root
        f"origin\n12\n{ROOT_B64[:-2]}\n",  # missing padding
        "origin\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",  # non-canonical bits
        f"origin\n12\n{ROOT_B64}\n\n",  # empty extension line
        f"origin\n12\n{ROOT_B64}",  # no final newline
        "origin\n12\n",
    ],
)
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(CheckpointMalformedError):
        Checkpoint.from_text(text)


def test_checkpoint_round_trip_with_extension_lines() -> None:
    signer = NoteSigner.generate("mmgen.example/audit")
    cp = Checkpoint("mmgen.example/audit", 12, bytes(range(32)), ("timestamp 1764057600",))
    note = sign_checkpoint(cp, signer)
    assert note.startswith(f"mmgen.example/audit\n12\n{ROOT_B64}\ntimestamp 1764057600\n\n\u2014 ")
    assert open_checkpoint(note, signer.verifier()) == cp
    assert NoteVerifier.from_string(signer.verifier().to_string()) == signer.verifier()
    assert NoteSigner.from_string(signer.to_string()) == signer


def test_sign_note_refuses_bad_text() -> None:
    signer = NoteSigner.generate("k")
    with pytest.raises(NoteMalformedError):
        sign_note("no newline", [signer])
    with pytest.raises(NoteMalformedError):
        sign_note("bell\x07\n", [signer])

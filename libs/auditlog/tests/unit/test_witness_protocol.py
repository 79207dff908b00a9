"""C2SP tlog-witness messages: the spec's request example, strict parsing, responses."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, parse_note, sign_checkpoint
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.errors import NoteUnverifiedError, WitnessRequestMalformedError
from mmgen.auditlog.witness_protocol import (
    MAX_PROOF_LINES,
    AddCheckpointRequest,
    format_size,
    parse_size,
    verified_cosignature,
)

CP = Path(__file__).resolve().parent.parent / "vectors" / "checkpoints"
VECTORS = json.loads((CP / "cosignature_v1.json").read_text(encoding="utf-8"))
H = [hashlib.sha256(bytes([i])).digest() for i in range(70)]


def test_c2sp_request_example_parses_and_re_encodes_byte_for_byte() -> None:
    example = VECTORS["c2sp_add_checkpoint_request"]
    request = AddCheckpointRequest.parse(example["body"].encode())
    assert request.old_size == example["old_size"]
    assert len(request.proof) == example["proof_lines"]
    note = request.signed_note()
    assert note.text.split("\n", 1)[0] == example["origin"]
    assert len(note.signatures) == example["note_signatures"]
    assert request.encode() == example["body"].encode()


def test_round_trip_from_old_size_zero() -> None:
    log = NoteSigner.generate("log.test/audit")
    note = sign_checkpoint(Checkpoint(log.name, 3, H[0]), log)
    request = AddCheckpointRequest.of(0, [], note)
    assert request.encode().startswith(b"old 0\n\nlog.test/audit\n3\n")
    assert AddCheckpointRequest.parse(request.encode()) == request


@pytest.mark.parametrize(
    "body",
    [
        b"old 1\n" + base64.b64encode(H[0]) + b"\nlog\n1\n",  # no empty line
        b"old 01\n\nnote",  # leading zero
        b"old -1\n\nnote",
        b"old 18446744073709551616\n\nnote",  # beyond uint64
        b"new 1\n\nnote",
        b"old 1\n" + base64.b64encode(H[0][:31]) + b"\n\nnote",  # 31 bytes
        b"old 1\n" + base64.urlsafe_b64encode(b"\xff" * 32) + b"\n\nnote",  # URL alphabet
        b"old 1\n" + base64.b64encode(H[0]).rstrip(b"=") + b"\n\nnote",  # unpadded
        b"old 1\n \n\nnote",
        b"old 1\n" + b"".join(base64.b64encode(h) + b"\n" for h in H[:64]) + b"\nnote",
        b"\xff\xfe",
        b"old 1\r\n\r\nnote",
    ],
)
def test_malformed_requests_are_refused(body: bytes) -> None:
    with pytest.raises(WitnessRequestMalformedError):
        AddCheckpointRequest.parse(body)


def test_63_proof_lines_is_the_limit() -> None:
    lines = b"".join(base64.b64encode(h) + b"\n" for h in H[:MAX_PROOF_LINES])
    assert len(AddCheckpointRequest.parse(b"old 5\n" + lines + b"\nx").proof) == 63
    with pytest.raises(WitnessRequestMalformedError):
        AddCheckpointRequest.of(5, H[:64], "x")


def test_size_body() -> None:
    assert format_size(20852014) == "20852014\n"
    assert parse_size(b"20852014\n") == 20852014
    for bad in (b"12", b"012\n", b"\n", b"1 \n", b"-1\n"):
        with pytest.raises(WitnessRequestMalformedError):
            parse_size(bad)


def test_verified_cosignature_picks_the_witness_line_and_checks_it() -> None:
    log = NoteSigner.generate("log.test/audit")
    note = sign_checkpoint(Checkpoint(log.name, 3, H[0]), log)
    text = parse_note(note).text
    witness, other = CosignatureSigner.generate("w.test/1"), CosignatureSigner.generate("w.test/2")
    mine = witness.cosign(text, 77)
    response = other.cosign(text, 5).line() + mine.line()
    assert verified_cosignature(note, response, witness.verifier()) == mine
    with pytest.raises(NoteUnverifiedError):
        verified_cosignature(note, other.cosign(text, 5).line(), witness.verifier())
    wrong_head = sign_checkpoint(Checkpoint(log.name, 4, H[1]), log)
    with pytest.raises(NoteUnverifiedError):
        verified_cosignature(wrong_head, mine.line(), witness.verifier())
    with pytest.raises(WitnessRequestMalformedError):
        verified_cosignature(note, "not a signature line\n", witness.verifier())
    with pytest.raises(WitnessRequestMalformedError):
        verified_cosignature(note, mine.line().rstrip("\n"), witness.verifier())

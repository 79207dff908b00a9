"""Offline verifier: valid logs pass; every kind of tampering is caught at the right seq."""

from __future__ import annotations

import copy
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder, make_entry
from mmgen.auditlog.errors import EntryMalformedError, ProofInvalidError
from mmgen.auditlog.memory import InMemoryNodeStore
from mmgen.auditlog.verify import (
    LogVerifier,
    iter_jsonl,
    verify_checkpoint_consistency,
    verify_entry_inclusion,
    verify_log,
)

ORIGIN = "audit.mmgen.test/log"
SIGNER = NoteSigner.generate(ORIGIN)
VKEY = SIGNER.verifier().to_string()
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _log(n: int, salt: str = "") -> tuple[list[dict[str, Any]], InMemoryNodeStore]:
    """n chained entries as the API serves them, and the node store the service would keep."""
    builder = ChainBuilder()
    appender = merkle.TreeAppender()
    store = InMemoryNodeStore()
    out = []
    for i in range(n):
        entry = builder.append(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}{i}"),
            producer=("identity", "projects", "profiles")[i % 3],
            producer_seq=i // 3,
            event_type="projects.MessageRead",
            action=("read", "deny", "share")[i % 3],
            subject_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"s{i % 7}")),
            actor_id=None if i % 5 == 0 else str(uuid.uuid5(uuid.NAMESPACE_DNS, f"a{i}")),
            actor_role=None if i % 5 == 0 else "staff",
            purpose=None if i % 5 == 0 else "support",
            resource={"type": "project", "id": f"p{i % 11}"},
            categories=["communication", "project"],
            occurred_at=T0 + timedelta(milliseconds=i),
            recorded_at=T0 + timedelta(milliseconds=i, seconds=1),
        )
        store.put(appender.append(entry.leaf_hash))
        out.append(entry.to_json())
    return out, store


def _note(store: InMemoryNodeStore, size: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root_from_store(store, size)), SIGNER)


ENTRIES, STORE = _log(40)
NOTE_40 = _note(STORE, 40)


def test_valid_log_with_checkpoint() -> None:
    result = verify_log(ENTRIES, checkpoint_note=NOTE_40, verifier_key=VKEY)
    assert result.to_json() == {
        "valid": True,
        "checked": 40,
        "first_bad_seq": None,
        "reason": None,
        "code": None,
        "tree_size": 40,
        "root_hash": merkle.root_from_store(STORE, 40).hex(),
        "checkpoint_size": 40,
    }


def test_entries_beyond_the_checkpoint_are_still_chain_checked() -> None:
    result = verify_log(ENTRIES, checkpoint_note=_note(STORE, 25), verifier_key=VKEY)
    assert (result.valid, result.checked, result.checkpoint.size) == (True, 40, 25)  # type: ignore[union-attr]
    tampered = copy.deepcopy(ENTRIES)
    tampered[30]["purpose"] = "marketing"
    bad = verify_log(tampered, checkpoint_note=_note(STORE, 25), verifier_key=VKEY)
    assert (bad.valid, bad.first_bad_seq, bad.code) == (False, 30, "hash_mismatch")


def _tamper(
    entries: list[dict[str, Any]], seq: int, field: str, value: Any
) -> list[dict[str, Any]]:
    out = copy.deepcopy(entries)
    out[seq][field] = value
    return out


@pytest.mark.parametrize(
    ("make", "seq", "code"),
    [
        (lambda e: _tamper(e, 7, "purpose", "marketing"), 7, "hash_mismatch"),
        (lambda e: _tamper(e, 7, "categories", ["communication"]), 7, "hash_mismatch"),
        (lambda e: _tamper(e, 0, "hash", "00" * 32), 0, "hash_mismatch"),
        (lambda e: _tamper(e, 9, "prev_hash", "11" * 32), 9, "prev_hash_mismatch"),
        (lambda e: e[:12] + e[13:], 12, "seq_gap"),
        (lambda e: [*e[:5], e[6], e[5], *e[7:]], 5, "seq_gap"),
        (lambda e: e[1:], 0, "seq_gap"),
        (lambda e: [*e[:3], e[2], *e[3:]], 3, "seq_gap"),
        (lambda e: _tamper(e, 4, "hash", e[4]["hash"].upper()), 4, "malformed"),
        (lambda e: _tamper(e, 4, "sneaky", "unhashed data"), 4, "malformed"),
        (lambda e: _tamper(e, 39, "seq", "39"), 39, "malformed"),
    ],
)
def test_tampering_is_caught_at_the_first_bad_seq(make: Any, seq: int, code: str) -> None:
    result = verify_log(make(ENTRIES), checkpoint_note=NOTE_40, verifier_key=VKEY)
    assert (result.valid, result.first_bad_seq, result.code) == (False, seq, code)
    assert result.checked == seq
    assert result.reason


def test_rehashing_a_tampered_entry_breaks_the_next_link() -> None:
    entries = copy.deepcopy(ENTRIES)
    forged = make_entry(
        **{
            **{k: entries[10][k] for k in ("event_id", "producer", "event_type", "action")},
            "seq": 10,
            "prev_hash": bytes.fromhex(entries[10]["prev_hash"]),
            "producer_seq": entries[10]["producer_seq"],
            "occurred_at": entries[10]["occurred_at"],
            "recorded_at": entries[10]["recorded_at"],
            "purpose": "marketing",
        }
    )
    entries[10] = forged.to_json()
    result = verify_log(entries)
    assert (result.first_bad_seq, result.code) == (11, "prev_hash_mismatch")


def test_rewriting_the_whole_chain_is_caught_by_the_signed_root() -> None:
    rewritten, _ = _log(40, salt="forged")
    result = verify_log(rewritten, checkpoint_note=NOTE_40, verifier_key=VKEY)
    assert (result.valid, result.code, result.first_bad_seq) == (
        False,
        "checkpoint_root_mismatch",
        None,
    )
    assert result.checked == 40


def test_truncated_log_is_caught_against_the_checkpoint() -> None:
    result = verify_log(ENTRIES[:30], checkpoint_note=NOTE_40, verifier_key=VKEY)
    assert (result.valid, result.code, result.first_bad_seq, result.checked) == (
        False,
        "checkpoint_beyond_entries",
        30,
        30,
    )


def test_checkpoint_needs_the_pinned_key() -> None:
    impostor = NoteSigner.generate(ORIGIN)
    forged_note = sign_checkpoint(open_checkpoint(NOTE_40, SIGNER.verifier()), impostor)
    result = verify_log(ENTRIES, checkpoint_note=forged_note, verifier_key=VKEY)
    assert (result.valid, result.code, result.checked) == (False, "checkpoint_invalid", 0)
    with pytest.raises(ValueError, match="pinned"):
        verify_log(ENTRIES, checkpoint_note=NOTE_40)


def test_empty_log_and_empty_checkpoint() -> None:
    empty_note = sign_checkpoint(Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT), SIGNER)
    result = verify_log([], checkpoint_note=empty_note, verifier_key=VKEY)
    assert (result.valid, result.checked, result.root_hash) == (True, 0, merkle.EMPTY_ROOT)


def test_streaming_from_a_jsonl_export_with_a_broken_line() -> None:
    lines = [json.dumps(e) + "\n" for e in ENTRIES]
    ok = verify_log(
        iter_jsonl(io.StringIO("".join(lines))), checkpoint_note=NOTE_40, verifier_key=VKEY
    )
    assert ok.valid
    lines[17] = lines[17][:40] + "\n"
    bad = verify_log(iter_jsonl(io.StringIO("".join(lines))))
    assert (bad.valid, bad.first_bad_seq, bad.code) == (False, 17, "malformed")


def test_range_verification_from_a_frontier() -> None:
    """Verifying entries 25..39 only, as GET /audit/verify?from=25 does on the server."""
    frontier = merkle.frontier_from_store(STORE, 25)
    result = verify_log(
        ENTRIES[25:],
        start_seq=25,
        prev_hash=bytes.fromhex(ENTRIES[24]["hash"]),
        frontier=frontier,
        checkpoint_note=NOTE_40,
        verifier_key=VKEY,
    )
    assert (result.valid, result.checked, result.tree_size) == (True, 15, 40)
    without_frontier = LogVerifier(start_seq=25, prev_hash=bytes.fromhex(ENTRIES[24]["hash"]))
    for entry in ENTRIES[25:]:
        assert without_frontier.feed(entry)
    assert without_frontier.result().root_hash is None


@settings(max_examples=60, deadline=None)
@given(
    seq=st.integers(0, 39),
    field=st.sampled_from(
        ["event_id", "producer", "event_type", "subject_id", "actor_role", "occurred_at"]
    ),
)
def test_any_single_field_change_is_detected(seq: int, field: str) -> None:
    entries = copy.deepcopy(ENTRIES)
    value = entries[seq][field]
    if field == "occurred_at":
        entries[seq][field] = value[:-2] + ("1Z" if value[-2] != "1" else "2Z")
    else:
        entries[seq][field] = (value or "x") + "x"
    result = verify_log(entries, checkpoint_note=NOTE_40, verifier_key=VKEY)
    assert (result.valid, result.first_bad_seq, result.code) == (False, seq, "hash_mismatch")


# ---------------------------------------------------------------- consistency and inclusion


@pytest.mark.parametrize(("old", "new"), [(1, 40), (13, 40), (16, 40), (25, 25), (39, 40)])
def test_checkpoint_consistency_with_a_served_proof(old: int, new: int) -> None:
    hashes = [h.hex() for h in merkle.consistency_proof_from_store(STORE, old, new)]
    proof = {"first": old, "second": new, "hashes": hashes}
    result = verify_checkpoint_consistency(_note(STORE, old), _note(STORE, new), proof, VKEY)
    assert result.valid, result.reason
    assert verify_checkpoint_consistency(_note(STORE, old), _note(STORE, new), hashes, VKEY).valid


def test_inconsistent_checkpoints_are_reported() -> None:
    _forked, forked_store = _log(40, salt="fork")
    old_note = _note(STORE, 20)
    new_note = _note(forked_store, 40)  # same key, different history
    hashes = [h.hex() for h in merkle.consistency_proof_from_store(forked_store, 20, 40)]
    result = verify_checkpoint_consistency(old_note, new_note, hashes, VKEY)
    assert (result.valid, result.code) == (False, "inconsistent")
    honest = [h.hex() for h in merkle.consistency_proof_from_store(STORE, 20, 40)]
    bad = [honest[0][:-1] + ("0" if honest[0][-1] != "0" else "1"), *honest[1:]]
    assert not verify_checkpoint_consistency(old_note, _note(STORE, 40), bad, VKEY).valid
    assert not verify_checkpoint_consistency(_note(STORE, 40), old_note, [], VKEY).valid
    wrong_sizes = {"first": 19, "second": 40, "hashes": honest}
    assert not verify_checkpoint_consistency(old_note, _note(STORE, 40), wrong_sizes, VKEY).valid


def test_consistency_from_an_empty_checkpoint() -> None:
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT), SIGNER)
    assert verify_checkpoint_consistency(empty, NOTE_40, [], VKEY).valid
    some = [merkle.EMPTY_ROOT.hex()]
    assert not verify_checkpoint_consistency(empty, NOTE_40, some, VKEY).valid


def test_consistency_needs_both_notes_signed_by_the_pinned_key() -> None:
    impostor = NoteSigner.generate(ORIGIN)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 40, merkle.root_from_store(STORE, 40)), impostor)
    result = verify_checkpoint_consistency(_note(STORE, 10), forged, [], VKEY)
    assert (result.valid, result.code) == (False, "checkpoint_invalid")


def test_entry_inclusion_in_a_checkpoint() -> None:
    checkpoint = open_checkpoint(NOTE_40, SIGNER.verifier())
    for seq in (0, 17, 39):
        hashes = [h.hex() for h in merkle.inclusion_proof_from_store(STORE, seq, 40)]
        proof = {"leaf_index": seq, "tree_size": 40, "hashes": hashes}
        verify_entry_inclusion(ENTRIES[seq], proof, checkpoint)
    proof = {"leaf_index": 5, "tree_size": 40, "hashes": []}
    with pytest.raises(ProofInvalidError):
        verify_entry_inclusion(ENTRIES[5], proof, checkpoint)
    hashes = [h.hex() for h in merkle.inclusion_proof_from_store(STORE, 5, 40)]
    with pytest.raises(ProofInvalidError):
        verify_entry_inclusion(
            ENTRIES[6], {"leaf_index": 5, "tree_size": 40, "hashes": hashes}, checkpoint
        )
    tampered = _tamper(ENTRIES, 5, "purpose", "marketing")[5]
    with pytest.raises(EntryMalformedError):
        verify_entry_inclusion(
            tampered, {"leaf_index": 5, "tree_size": 40, "hashes": hashes}, checkpoint
        )

"""The witness's decisions over the in-memory store: what it cosigns and every refusal."""

from __future__ import annotations

import pytest

from mmgen.auditlog.checkpoint import NoteSigner, parse_note, sign_note
from mmgen.auditlog.cosignature import CosignatureSigner, open_cosigned_checkpoint
from mmgen.auditlog.witness_protocol import AddCheckpointRequest
from mmgen.witness.domain import (
    CheckpointNotSignedError,
    ConflictError,
    ConsistencyProofError,
    RequestMalformedError,
    UnknownLogError,
)
from mmgen.witness.service import Witness
from mmgen.witness.store import InMemoryWitnessStore

NOW = 1_800_000_000.0


def make_witness(log: object, key: CosignatureSigner) -> Witness:
    return Witness(key, [log.signer.verifier()], InMemoryWitnessStore(), clock=lambda: NOW)  # type: ignore[attr-defined]


async def add(witness: Witness, request: AddCheckpointRequest) -> str:
    return await witness.add_checkpoint(request.encode())


async def test_cosigns_a_first_head_then_each_consistent_extension(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(5)
    line = await add(witness, log.request(0))
    cosigned = open_cosigned_checkpoint(
        log.note() + line, log.signer.verifier(), [witness_key.verifier()], quorum=1
    )
    assert cosigned.checkpoint.size == 5
    assert cosigned.cosignatures[0].timestamp == int(NOW)
    for grow in (1, 7, 64, 3):
        old = len(log.leaves)
        log.append(grow)
        line = await add(witness, log.request(old))
        note = log.note() + line
        open_cosigned_checkpoint(note, log.signer.verifier(), [witness_key.verifier()], quorum=1)
    assert witness.latest_sizes() == {log.origin: 80}
    # The same head again (a retry) is cosigned again: nothing changed.
    again = await add(witness, log.request(80))
    assert again.startswith(f"— {witness_key.name} ")


async def test_refuses_a_checkpoint_not_signed_by_the_log(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(4)
    impostor = NoteSigner.generate(log.origin)  # same name, another key
    forged = AddCheckpointRequest.of(0, [], log.note(signer=impostor))
    with pytest.raises(CheckpointNotSignedError):
        await add(witness, forged)
    # A note whose log signature is damaged.
    note = log.note()
    text = parse_note(note).text
    sig = note[len(text) + 1 :]
    bad = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
    with pytest.raises(CheckpointNotSignedError):
        await add(witness, AddCheckpointRequest.of(0, [], text + "\n" + bad))
    # Unsigned: text only, no signature line at all.
    with pytest.raises(RequestMalformedError):
        await add(witness, AddCheckpointRequest.of(0, [], text))
    # Signed only by a witness key, not the log's.
    cosigned_only = text + "\n" + witness_key.cosign(text, 1).line()
    with pytest.raises(CheckpointNotSignedError):
        await add(witness, AddCheckpointRequest.of(0, [], cosigned_only))
    assert witness.latest_sizes() == {}


async def test_refuses_an_unknown_log(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    other = type(log)(NoteSigner.generate("other.test/log"))
    other.append(3)
    with pytest.raises(UnknownLogError):
        await add(witness, other.request(0))


async def test_refuses_a_smaller_size_and_a_stale_old_size(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(10)
    await add(witness, log.request(0))
    # Going back in time, told honestly: old 10, checkpoint of size 6 → 400.
    with pytest.raises(RequestMalformedError, match="beyond"):
        await add(witness, AddCheckpointRequest.of(10, [], log.note(6)))
    # ... or pretending the witness is at 6: → 409 with the size it cosigned.
    with pytest.raises(ConflictError) as conflict:
        await add(witness, log.request(6, 6))
    assert conflict.value.latest_size == 10
    # A client that does not know the witness's size asks with 0 and learns it.
    log.append(2)
    with pytest.raises(ConflictError) as conflict:
        await add(witness, log.request(0))
    assert conflict.value.latest_size == 10
    assert witness.latest_sizes() == {log.origin: 10}


async def test_refuses_an_inconsistent_proof(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(7)
    await add(witness, log.request(0))
    log.append(9)
    good = log.request(7)
    wrong = list(good.proof)
    wrong[1] = bytes(32)
    for proof in (wrong, good.proof[:-1], [*good.proof, bytes(32)], []):
        with pytest.raises(ConsistencyProofError):
            await add(witness, AddCheckpointRequest.of(7, proof, good.note))
    assert witness.latest_sizes() == {log.origin: 7}
    assert len(witness.store.evidence) == 4  # type: ignore[attr-defined]
    await add(witness, good)
    assert witness.latest_sizes() == {log.origin: 16}


async def test_refuses_a_history_rewritten_after_a_restore_from_backup(log, witness_key) -> None:
    """The log is restored from an older backup (size 12) after the witness cosigned 20, and
    extended differently: neither the rewritten tree at 20 nor any later one is cosigned."""
    witness = make_witness(log, witness_key)
    log.append(12)
    await add(witness, log.request(0))
    log.append(8)
    await add(witness, log.request(12))
    restored = log.restored(12)
    restored.append(8, tag="rewritten")
    # Same size as cosigned, another root: 409.
    with pytest.raises(ConflictError) as same_size:
        await add(witness, restored.request(20))
    assert same_size.value.latest_size == 20
    # Longer, with the only proof the rewritten log can produce (from 20, its own tree): 422.
    restored.append(5, tag="rewritten")
    with pytest.raises(ConsistencyProofError):
        await add(witness, restored.request(20))
    # Claiming the witness is still at the backup's size: 409 with 20.
    with pytest.raises(ConflictError):
        await add(witness, restored.request(12))
    assert witness.latest_sizes() == {log.origin: 20}
    evidence = witness.store.evidence  # type: ignore[attr-defined]
    assert [e["cosigned_size"] for e in evidence] == [20, 20]
    assert evidence[0]["refused_note"] == restored.note(20)


async def test_an_equal_size_with_a_proof_or_a_proof_from_zero_is_refused(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(3)
    with pytest.raises(ConsistencyProofError):
        await add(witness, AddCheckpointRequest.of(0, [bytes(32)], log.note()))
    await add(witness, log.request(0))
    with pytest.raises(ConsistencyProofError):
        await add(witness, AddCheckpointRequest.of(3, [bytes(32)], log.note()))


async def test_malformed_bodies(log, witness_key) -> None:
    witness = make_witness(log, witness_key)
    log.append(2)
    for body in (b"", b"old 0\n", b"old x\n\n" + log.note().encode(), b"old 0\n\nnot a note"):
        with pytest.raises(RequestMalformedError):
            await witness.add_checkpoint(body)
    note = sign_note(f"{log.origin}\nhello\n", [log.signer])  # signed, not a checkpoint
    with pytest.raises(RequestMalformedError, match="checkpoint"):
        await witness.add_checkpoint(AddCheckpointRequest.of(0, [], note).encode())

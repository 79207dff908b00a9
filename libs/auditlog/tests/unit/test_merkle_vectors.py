"""RFC 9162 Merkle hashing, proofs and verification against the upstream and derived vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.errors import ProofInvalidError
from mmgen.auditlog.memory import InMemoryNodeStore
from mmgen.auditlog.verify import LogVerifier

VECTORS = Path(__file__).resolve().parent.parent / "vectors"

CT = json.loads((VECTORS / "merkle/rfc6962_ct_8_leaves.json").read_text())
DERIVED = json.loads((VECTORS / "merkle/derived_all_proofs_8_leaves.json").read_text())
PROBES = VECTORS / "merkle/transparency-dev-merkle-testdata"
LEAF_HASHES = [merkle.hash_leaf(bytes.fromhex(h)) for h in CT["leaves_hex"]]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _store_for(leaf_hashes: list[bytes]) -> InMemoryNodeStore:
    store = InMemoryNodeStore()
    appender = merkle.TreeAppender()
    store.put(appender.extend(leaf_hashes).nodes)
    return store


def test_basic_hashes() -> None:
    for case in CT["basic_hashes"]:
        want = bytes.fromhex(case["expected_hex"])
        if case["kind"] == "empty_tree":
            assert want == merkle.EMPTY_ROOT
            assert merkle.root_from_leaf_hashes([]) == want
        elif case["kind"] == "leaf":
            assert merkle.hash_leaf(bytes.fromhex(case["input_hex"])) == want
        else:
            left, right = bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])
            got = merkle.hash_children(left, right)
            assert got == want


def test_leaf_hashes_match_derived_file() -> None:
    assert [h.hex() for h in LEAF_HASHES] == DERIVED["leaf_hashes_hex"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_list_appender_and_store(size: int) -> None:
    want = bytes.fromhex(CT["roots_hex"][size - 1])
    assert merkle.root_from_leaf_hashes(LEAF_HASHES[:size]) == want
    appender = merkle.TreeAppender()
    appender.extend(LEAF_HASHES[:size])
    assert appender.root() == want
    assert merkle.root_from_store(_store_for(LEAF_HASHES), size) == want
    assert merkle.root_from_store(_store_for(LEAF_HASHES[:size]), size) == want


@pytest.mark.parametrize("size", range(1, 9))
def test_subtrees_of_ranges_give_the_vector_roots(size: int) -> None:
    """The CT leaves cut anywhere into two ranges, each covered by `subtrees_of_range` and
    folded in order, give the RFC 6962 root of every size."""
    want = bytes.fromhex(CT["roots_hex"][size - 1])
    for cut in range(size + 1):
        verifier = LogVerifier(frontier=merkle.Frontier(0))
        verifier.feed_subtrees(merkle.subtrees_of_range(0, LEAF_HASHES[:cut]), bytes(32))
        verifier.feed_subtrees(merkle.subtrees_of_range(cut, LEAF_HASHES[cut:size]), bytes(32))
        assert verifier.root() == want


def test_empty_root_needs_no_reads() -> None:
    store = InMemoryNodeStore()
    assert merkle.root_from_store(store, 0) == merkle.EMPTY_ROOT
    assert store.reads == 0


@pytest.mark.parametrize("source", ["ct", "derived"])
def test_inclusion_proofs_generate_and_verify(source: str) -> None:
    cases = CT["inclusion_proofs"] if source == "ct" else DERIVED["inclusion"]
    store = _store_for(LEAF_HASHES)
    for case in cases:
        index, size = case["leaf_index"], case["tree_size"]
        want = [bytes.fromhex(h) for h in case["proof_hex"]]
        assert merkle.inclusion_proof(LEAF_HASHES[:size], index) == want
        assert merkle.inclusion_proof_from_store(store, index, size) == want
        root = bytes.fromhex(CT["roots_hex"][size - 1])
        merkle.verify_inclusion(LEAF_HASHES[index], index, size, want, root)
        if want:  # any corruption of a proof element must be refused
            bad = [*want]
            bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
            assert not merkle.is_valid_inclusion(LEAF_HASHES[index], index, size, bad, root)


@pytest.mark.parametrize("source", ["ct", "derived"])
def test_consistency_proofs_generate_and_verify(source: str) -> None:
    cases = CT["consistency_proofs"] if source == "ct" else DERIVED["consistency"]
    store = _store_for(LEAF_HASHES)
    for case in cases:
        m, n = case["size1"], case["size2"]
        want = [bytes.fromhex(h) for h in case["proof_hex"]]
        assert merkle.consistency_proof(LEAF_HASHES[:n], m) == want
        assert merkle.consistency_proof_from_store(store, m, n) == want
        r1 = bytes.fromhex(CT["roots_hex"][m - 1])
        r2 = bytes.fromhex(CT["roots_hex"][n - 1])
        merkle.verify_consistency(m, n, want, r1, r2)
        if m != n:
            assert not merkle.is_valid_consistency(m, n, want, r2, r2)
            assert not merkle.is_valid_consistency(m, n, want[:-1], r1, r2)


def _probe_files(kind: str) -> list[Path]:
    files = sorted((PROBES / kind).rglob("*.json"))
    assert files, f"no {kind} probes found"
    return files


def _probe_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", _probe_files("inclusion"), ids=_probe_id)
def test_transparency_dev_inclusion_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    proof = [_b64(p) for p in probe["proof"] or []]
    leaf, root = _b64(probe["leafHash"]), _b64(probe["root"])
    args = (leaf, probe["leafIdx"], probe["treeSize"], proof, root)
    if probe["wantErr"]:
        with pytest.raises(ProofInvalidError):
            merkle.verify_inclusion(*args)
        assert not merkle.is_valid_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)
        assert merkle.is_valid_inclusion(*args)


@pytest.mark.parametrize("path", _probe_files("consistency"), ids=_probe_id)
def test_transparency_dev_consistency_probe(path: Path) -> None:
    probe = json.loads(path.read_text())
    proof = [_b64(p) for p in probe["proof"] or []]
    args = (probe["size1"], probe["size2"], proof, _b64(probe["root1"]), _b64(probe["root2"]))
    if probe["wantErr"]:
        with pytest.raises(ProofInvalidError):
            merkle.verify_consistency(*args)
        assert not merkle.is_valid_consistency(*args)
    else:
        merkle.verify_consistency(*args)
        assert merkle.is_valid_consistency(*args)


def test_probe_counts_cover_all_upstream_cases() -> None:
    # 196 inclusion + consistency probes are the checked upstream set (README).
    assert len(_probe_files("inclusion")) + len(_probe_files("consistency")) == 196


def test_consistency_from_zero_is_refused_even_with_empty_proof() -> None:
    with pytest.raises(ProofInvalidError, match="empty tree"):
        merkle.verify_consistency(0, 3, [], merkle.EMPTY_ROOT, bytes.fromhex(CT["roots_hex"][2]))


def test_inclusion_rejects_wrong_sized_inputs() -> None:
    root = bytes.fromhex(CT["roots_hex"][1])
    proof = [LEAF_HASHES[1]]
    merkle.verify_inclusion(LEAF_HASHES[0], 0, 2, proof, root)
    with pytest.raises(ProofInvalidError):
        merkle.verify_inclusion(LEAF_HASHES[0][:31], 0, 2, proof, root)
    with pytest.raises(ProofInvalidError):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1] + b"\x00"], root)
    with pytest.raises(ProofInvalidError):
        merkle.verify_inclusion(LEAF_HASHES[0], -1, 2, proof, root)
    with pytest.raises(ProofInvalidError):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 2**64, proof, root)

"""Storage-based Merkle algorithms agree with the list-based RFC definitions, in O(log n) reads."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgen.auditlog import merkle
from mmgen.auditlog.errors import TreeStorageError
from mmgen.auditlog.memory import AsyncInMemoryNodeStore, InMemoryNodeStore

MAX_N = 300


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [merkle.hash_leaf(f"{salt}:{i}".encode()) for i in range(n)]


_ALL = _leaves(MAX_N)
_STORE = InMemoryNodeStore()
_STORE.put(merkle.TreeAppender().extend(_ALL).nodes)


def _log2_ceil(n: int) -> int:
    return max(1, (n - 1).bit_length())


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_N))
def test_root_from_store_matches_list(n: int) -> None:
    before = _STORE.reads
    assert merkle.root_from_store(_STORE, n) == merkle.root_from_leaf_hashes(_ALL[:n])
    assert _STORE.reads - before == n.bit_count()


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_N).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_from_store_matches_list(case: tuple[int, int]) -> None:
    n, index = case
    want = merkle.inclusion_proof(_ALL[:n], index)
    before = _STORE.reads
    got = merkle.inclusion_proof_from_store(_STORE, index, n)
    reads = _STORE.reads - before
    assert got == want
    assert reads <= 2 * _log2_ceil(n)
    merkle.verify_inclusion(_ALL[index], index, n, got, merkle.root_from_leaf_hashes(_ALL[:n]))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_N).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_from_store_matches_list(case: tuple[int, int]) -> None:
    m, n = case
    want = merkle.consistency_proof(_ALL[:n], m)
    before = _STORE.reads
    got = merkle.consistency_proof_from_store(_STORE, m, n)
    reads = _STORE.reads - before
    assert got == want
    assert reads <= 2 * _log2_ceil(n) + 1
    merkle.verify_consistency(
        m, n, got, merkle.root_from_leaf_hashes(_ALL[:m]), merkle.root_from_leaf_hashes(_ALL[:n])
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=8), st.integers(0, 5))
def test_appender_in_batches_equals_one_pass(batches: list[int], salt: int) -> None:
    """Appending in any batching, across restarts from a stored frontier, stores the same nodes."""
    leaves = _leaves(sum(batches), salt)
    one_pass = merkle.TreeAppender().extend(leaves)
    store = InMemoryNodeStore()
    frontier = merkle.Frontier(0)
    pos = 0
    for size in batches:
        # a restart: rebuild the frontier from storage alone, as the service does on boot
        frontier = merkle.frontier_from_store(store, pos) if pos else frontier
        result = merkle.TreeAppender(frontier).extend(leaves[pos : pos + size])
        store.put(result.nodes)
        frontier, pos = result.frontier, pos + size
    assert frontier == one_pass.frontier
    assert store.nodes == {node.id: node.hash for node in one_pass.nodes}
    assert frontier.root() == merkle.root_from_leaf_hashes(leaves)


def test_appender_stores_each_completed_node_once() -> None:
    appender = merkle.TreeAppender()
    nodes = [n.id for n in appender.extend(_leaves(8)).nodes]
    assert nodes == [
        (0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0),
        (0, 4), (0, 5), (1, 2), (0, 6), (0, 7), (1, 3), (2, 1), (3, 0),
    ]  # fmt: skip
    assert appender.frontier.node_ids == ((3, 0),)


def test_stored_node_hashes_are_subtree_roots() -> None:
    for node in merkle.TreeAppender().extend(_ALL[:37]).nodes:
        lo, hi = node.index << node.level, (node.index + 1) << node.level
        assert node.hash == merkle.root_from_leaf_hashes(_ALL[lo:hi])


def test_plans_use_one_batch_with_get_many() -> None:
    store = InMemoryNodeStore()
    store.put(merkle.TreeAppender().extend(_ALL).nodes)
    merkle.inclusion_proof_from_store(store, 77, 299)
    merkle.consistency_proof_from_store(store, 100, 299)
    assert store.batches == 2


def test_get_only_reader_path() -> None:
    class GetOnly:
        def __init__(self) -> None:
            self.reads = 0

        def get(self, level: int, index: int) -> bytes:
            self.reads += 1
            return _STORE.nodes[(level, index)]

    reader = GetOnly()
    got = merkle.inclusion_proof_from_store(reader, 5, 200)
    assert got == merkle.inclusion_proof(_ALL[:200], 5)
    assert 0 < reader.reads <= 2 * _log2_ceil(200)


def test_missing_node_is_a_storage_error() -> None:
    store = InMemoryNodeStore()
    store.put(merkle.TreeAppender().extend(_ALL[:10]).nodes)
    with pytest.raises(TreeStorageError):
        merkle.root_from_store(store, 11)  # leaf 10 was never stored


def test_large_tree_proof_reads_are_logarithmic() -> None:
    """A 2**20-leaf tree's proofs touch O(log n) nodes, whatever the index."""
    n = (1 << 20) + 12345
    for index in (0, 1, n // 2, n - 2, n - 1):
        plan = merkle.plan_inclusion(index, n)
        assert len(plan.nodes) <= 2 * 21
    for m in (1, 3, 1 << 19, n - 1):
        assert len(merkle.plan_consistency(m, n).nodes) <= 2 * 21 + 1


def test_node_key_round_trip() -> None:
    for level, index in [(0, 0), (3, 5), (63, 2**40), (0, 2**57 - 1)]:
        key = merkle.node_key(level, index)
        assert merkle.node_id_from_key(key) == (level, index)
    assert merkle.node_key(0, 2**57 - 1) < 2**63
    plan = merkle.plan_inclusion(3, 8)
    assert plan.node_keys == [merkle.node_key(*n) for n in plan.nodes]


def test_frontier_json_round_trip_and_validation() -> None:
    appender = merkle.TreeAppender()
    appender.extend(_ALL[:13])
    frontier = appender.frontier
    assert merkle.Frontier.from_json(frontier.to_json()) == frontier
    assert frontier.root() == merkle.root_from_leaf_hashes(_ALL[:13])
    with pytest.raises(ValueError, match="frontier hashes"):
        merkle.Frontier(13, frontier.hashes[:2])
    assert hashlib.sha256(b"").digest() == merkle.Frontier(0).root()


async def test_async_store_helpers_match_sync_ones() -> None:
    store = AsyncInMemoryNodeStore()
    store.put(merkle.TreeAppender().extend(_ALL).nodes)
    assert await merkle.aroot_from_store(store, 0) == merkle.EMPTY_ROOT
    assert await merkle.aroot_from_store(store, 123) == merkle.root_from_leaf_hashes(_ALL[:123])
    got = await merkle.ainclusion_proof_from_store(store, 77, 299)
    assert got == merkle.inclusion_proof(_ALL[:299], 77)
    got = await merkle.aconsistency_proof_from_store(store, 100, 299)
    assert got == merkle.consistency_proof(_ALL[:299], 100)
    frontier = await merkle.afrontier_from_store(store, 299)
    assert frontier.root() == merkle.root_from_leaf_hashes(_ALL[:299])
    assert store.batches == 4  # one round trip each (the empty root needs none)

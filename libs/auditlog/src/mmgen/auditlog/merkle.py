"""RFC 9162 Merkle tree: hashes, proofs, verification, and O(log n) proofs from node storage.

Two families of functions live here:

* list-based (``root_from_leaf_hashes``, ``inclusion_proof``, ``consistency_proof``): the
  RFC's recursive definitions over an in-memory list of leaf hashes. They are the reference
  the storage-based code is tested against, and they serve small trees.
* storage-based: the log keeps the hash of every *complete perfect subtree* ("node")
  addressed by ``(level, index)`` — level 0 are leaf hashes, node ``(l, i)`` covers leaves
  ``[i * 2**l, (i + 1) * 2**l)``. A ``TreeAppender`` yields the nodes each append completes;
  ``plan_*`` functions name the O(log n) nodes a root or proof needs, so the service can
  fetch them in one batched (possibly asynchronous) query and ``assemble`` the answer.
  ``*_from_store`` wrap plan + fetch + assemble for a synchronous ``NodeReader``.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and rejects, like transparency-dev/merkle,
a consistency proof from size 0 (the C2SP witness convention of accepting ``old 0`` is applied
one level up, in ``mmgen.auditlog.verify``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .errors import ProofInvalidError, TreeStorageError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "AppendResult",
    "AsyncBatchNodeReader",
    "BatchNodeReader",
    "Frontier",
    "NodeId",
    "NodeReader",
    "ProofPlan",
    "StoredNode",
    "TreeAppender",
    "aconsistency_proof_from_store",
    "afrontier_from_store",
    "ainclusion_proof_from_store",
    "aroot_from_store",
    "consistency_proof",
    "consistency_proof_from_store",
    "frontier_from_store",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "inclusion_proof_from_store",
    "is_valid_consistency",
    "is_valid_inclusion",
    "node_id_from_key",
    "node_key",
    "plan_consistency",
    "plan_frontier",
    "plan_inclusion",
    "plan_root",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "root_from_store",
    "subtrees_of_range",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: Tree sizes are unsigned 64-bit integers (as in C2SP checkpoints and RFC 9162).
MAX_TREE_SIZE = 2**64 - 1
#: MTH({}) = SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

#: ``(level, index)`` of a complete perfect subtree.
NodeId = tuple[int, int]


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------- list-based


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1), computed bottom-up in O(n)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (size, hash) of perfect subtrees, largest first
    for h in leaf_hashes:
        size, cur = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            cur = hash_children(left, cur)
            size += left_size
        stack.append((size, cur))
    cur = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        cur = hash_children(left, cur)
    return cur


def subtrees_of_range(start: int, leaf_hashes: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """``(level, hash)`` of the largest perfect subtrees that exactly cover leaves
    ``[start, start + len(leaf_hashes))`` of any tree, left to right.

    Computed a level at a time over whole lists (one hash per pair, no per-leaf frontier
    bookkeeping). A verifier that holds the frontier at ``start`` appends them in order
    (`verify.LogVerifier.feed_subtrees`); each is aligned (a level-``l`` subtree starts at a
    multiple of ``2**l``), so the tree's root at the range's end follows as if the leaves had
    been appended one by one.
    """
    left: list[tuple[int, bytes]] = []
    right: list[tuple[int, bytes]] = []
    hashes, level = list(leaf_hashes), 0
    sha256 = _sha256
    while hashes:
        if start & 1:
            left.append((level, hashes[0]))
            del hashes[0]
            start += 1
        if len(hashes) & 1:
            right.append((level, hashes.pop()))
        pairs = iter(hashes)
        hashes = [sha256(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=True)]
        start >>= 1
        level += 1
    return left + right[::-1]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 §2.1.3.1, by its recursive definition."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is not in a tree of size {n}")
    proof: list[bytes] = []
    lo, hi, m = 0, n, index
    # Walk down; siblings are collected top-down, then reversed (the proof is leaf-up).
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(root_from_leaf_hashes(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_from_leaf_hashes(leaf_hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 for m = ``old_size``, n = len(leaf_hashes)."""
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise ValueError(f"no consistency proof from size {old_size} to size {n}")
    proof: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    while True:
        if m == hi - lo:
            if not complete:
                proof.append(root_from_leaf_hashes(leaf_hashes[lo:hi]))
            break
        k = _split(hi - lo)
        if m <= k:
            proof.append(root_from_leaf_hashes(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_from_leaf_hashes(leaf_hashes[lo : lo + k]))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


# --------------------------------------------------------------------------- verification


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofInvalidError(f"{what} is not a {HASH_SIZE}-byte hash")


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofInvalidError(f"{what} is not a uint64")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4); raises on misuse."""
    _check_size(index, "leaf index")
    _check_size(tree_size, "tree size")
    if index >= tree_size:
        raise ProofInvalidError(f"leaf index {index} is not below tree size {tree_size}")
    _check_hash(leaf_hash, "leaf hash")
    fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
    for p in proof:
        _check_hash(p, "proof element")
        if sn == 0:
            raise ProofInvalidError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalidError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofInvalidError`` unless ``proof`` shows the leaf at ``index`` under ``root``."""
    if root_from_inclusion_proof(leaf_hash, index, tree_size, proof) != root:
        raise ProofInvalidError("inclusion proof does not lead to the root hash")


def is_valid_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Boolean form of ``verify_inclusion``."""
    try:
        verify_inclusion(leaf_hash, index, tree_size, proof, root)
    except ProofInvalidError:
        return False
    return True


def root_from_consistency_proof(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes
) -> bytes:
    """New root implied by a consistency proof, after checking it against ``old_root``.

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size; equal sizes need an empty proof and
    give back ``old_root``; old size 0 is refused (a proof from nothing proves nothing).
    """
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if new_size < old_size:
        raise ProofInvalidError(f"new size {new_size} is below old size {old_size}")
    if old_size == 0:
        raise ProofInvalidError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofInvalidError("equal sizes need an empty consistency proof")
        return bytes(old_root)
    if not proof:
        raise ProofInvalidError("empty consistency proof")
    _check_hash(old_root, "old root")
    path = list(proof)
    for p in path:
        _check_hash(p, "proof element")
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is the seed
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalidError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalidError("consistency proof is too short")
    if fr != old_root:
        raise ProofInvalidError("consistency proof does not lead to the old root hash")
    return sr


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Raise ``ProofInvalidError`` unless the tree at ``new_root`` extends that at ``old_root``."""
    if root_from_consistency_proof(old_size, new_size, proof, old_root) != new_root:
        raise ProofInvalidError("consistency proof does not lead to the new root hash")


def is_valid_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Boolean form of ``verify_consistency``."""
    try:
        verify_consistency(old_size, new_size, proof, old_root, new_root)
    except ProofInvalidError:
        return False
    return True


# --------------------------------------------------------------------------- storage


@runtime_checkable
class NodeReader(Protocol):
    """Read access to stored node hashes (complete perfect subtrees only)."""

    def get(self, level: int, index: int) -> bytes:
        """Hash of node ``(level, index)``; raise ``KeyError`` (or similar) if absent."""
        ...


@runtime_checkable
class BatchNodeReader(NodeReader, Protocol):
    """A NodeReader that can fetch many nodes in one round trip (e.g. one ``$in`` query)."""

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Hashes of the requested nodes, keyed by ``(level, index)``; absent ones omitted."""
        ...


@runtime_checkable
class AsyncBatchNodeReader(Protocol):
    """Asynchronous batched node access (e.g. PyMongo's async API): one round trip per plan."""

    async def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Hashes of the requested nodes, keyed by ``(level, index)``; absent ones omitted."""
        ...


def node_key(level: int, index: int) -> int:
    """One integer per node — ``index * 64 + level`` — usable as a database ``_id``.

    Fits in a signed 64-bit BSON integer for every node of a tree below 2**57 leaves.
    """
    if not 0 <= level < 64 or index < 0:
        raise ValueError(f"invalid node ({level}, {index})")
    return (index << 6) | level


def node_id_from_key(key: int) -> NodeId:
    """Inverse of ``node_key``."""
    return key & 63, key >> 6


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A node that became complete on append and must be stored: ``(level, index) -> hash``."""

    level: int
    index: int
    hash: bytes

    @property
    def id(self) -> NodeId:
        return (self.level, self.index)

    @property
    def key(self) -> int:
        return node_key(self.level, self.index)


def _cover(start: int, end: int) -> list[NodeId]:
    """Perfect subtrees covering leaves [start, end), left to right, greedily largest-first.

    For the ranges RFC 9162's recursion produces (``start`` aligned to the range's
    enclosing power of two) this is the binary decomposition of ``end - start``.
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees given largest-first: fold from the right."""
    cur = hashes[-1]
    for left in reversed(hashes[:-1]):
        cur = hash_children(left, cur)
    return cur


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The nodes a root or proof needs, and how to combine them once fetched.

    ``ranges`` are the leaf ranges whose MTH make up the answer, in answer order;
    ``nodes`` the distinct node ids to fetch (at most about 2·log2(n)).
    """

    ranges: tuple[tuple[int, int], ...]
    nodes: tuple[NodeId, ...] = field(init=False)

    def __post_init__(self) -> None:
        seen: dict[NodeId, None] = {}
        for start, end in self.ranges:
            for node in _cover(start, end):
                seen[node] = None
        object.__setattr__(self, "nodes", tuple(seen))

    @property
    def node_keys(self) -> list[int]:
        """``node_key`` of every node to fetch (for a single ``{"_id": {"$in": ...}}``)."""
        return [node_key(level, index) for level, index in self.nodes]

    def assemble(self, fetched: Mapping[NodeId, bytes] | Callable[[NodeId], bytes]) -> list[bytes]:
        """Combine fetched node hashes into the answer (one hash per range)."""
        lookup = fetched.__getitem__ if isinstance(fetched, Mapping) else fetched
        out: list[bytes] = []
        for start, end in self.ranges:
            parts: list[bytes] = []
            for node in _cover(start, end):
                try:
                    value = lookup(node)
                except KeyError as exc:
                    raise TreeStorageError(f"node {node} is missing from storage") from exc
                if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
                    raise TreeStorageError(f"node {node} is not a {HASH_SIZE}-byte hash")
                parts.append(bytes(value))
            out.append(_fold(parts))
        return out


def plan_root(tree_size: int) -> ProofPlan:
    """Plan for MTH(D[tree_size]): popcount(tree_size) reads; empty tree needs none."""
    _check_plan_size(tree_size)
    return ProofPlan(((0, tree_size),) if tree_size else ())


def plan_frontier(tree_size: int) -> ProofPlan:
    """Plan for the right frontier of a tree: one range per perfect subtree (largest first)."""
    _check_plan_size(tree_size)
    return ProofPlan(tuple((i << lvl, (i + 1) << lvl) for lvl, i in _cover(0, tree_size)))


def plan_inclusion(index: int, tree_size: int) -> ProofPlan:
    """Plan for PATH(index, D[tree_size]) in leaf-to-root order."""
    _check_plan_size(tree_size)
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is not in a tree of size {tree_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ProofPlan(tuple(ranges))


def plan_consistency(old_size: int, new_size: int) -> ProofPlan:
    """Plan for PROOF(old_size, D[new_size]); equal sizes give an empty proof."""
    _check_plan_size(new_size)
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        if m == hi - lo:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    ranges.reverse()
    return ProofPlan(tuple(ranges))


def _check_plan_size(tree_size: int) -> None:
    if isinstance(tree_size, bool) or not isinstance(tree_size, int):
        raise TypeError("tree size must be an int")
    if not 0 <= tree_size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {tree_size} is not a uint64")


def _fetch(reader: NodeReader, plan: ProofPlan) -> list[bytes]:
    if not plan.nodes:
        return plan.assemble({})
    get_many = getattr(reader, "get_many", None)
    if get_many is not None:
        return plan.assemble(get_many(plan.nodes))
    return plan.assemble(lambda node: reader.get(*node))


def root_from_store(reader: NodeReader, tree_size: int) -> bytes:
    """Root hash of the tree of ``tree_size`` leaves from stored nodes."""
    plan = plan_root(tree_size)
    return _fetch(reader, plan)[0] if tree_size else EMPTY_ROOT


def inclusion_proof_from_store(reader: NodeReader, index: int, tree_size: int) -> list[bytes]:
    """Inclusion proof from stored nodes in O(log n) reads (one batch with ``get_many``)."""
    return _fetch(reader, plan_inclusion(index, tree_size))


def consistency_proof_from_store(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """Consistency proof from stored nodes in O(log n) reads (one batch with ``get_many``)."""
    return _fetch(reader, plan_consistency(old_size, new_size))


def frontier_from_store(reader: NodeReader, tree_size: int) -> Frontier:
    """Rebuild the append frontier (e.g. on service start) from popcount(size) stored nodes."""
    return Frontier(tree_size, tuple(_fetch(reader, plan_frontier(tree_size))))


async def _afetch(reader: AsyncBatchNodeReader, plan: ProofPlan) -> list[bytes]:
    return plan.assemble(await reader.get_many(plan.nodes) if plan.nodes else {})


async def aroot_from_store(reader: AsyncBatchNodeReader, tree_size: int) -> bytes:
    """Async ``root_from_store``: one ``get_many`` round trip."""
    plan = plan_root(tree_size)
    return (await _afetch(reader, plan))[0] if tree_size else EMPTY_ROOT


async def ainclusion_proof_from_store(
    reader: AsyncBatchNodeReader, index: int, tree_size: int
) -> list[bytes]:
    """Async ``inclusion_proof_from_store``: one ``get_many`` round trip."""
    return await _afetch(reader, plan_inclusion(index, tree_size))


async def aconsistency_proof_from_store(
    reader: AsyncBatchNodeReader, old_size: int, new_size: int
) -> list[bytes]:
    """Async ``consistency_proof_from_store``: one ``get_many`` round trip."""
    return await _afetch(reader, plan_consistency(old_size, new_size))


async def afrontier_from_store(reader: AsyncBatchNodeReader, tree_size: int) -> Frontier:
    """Async ``frontier_from_store``: one ``get_many`` round trip."""
    return Frontier(tree_size, tuple(await _afetch(reader, plan_frontier(tree_size))))


# --------------------------------------------------------------------------- appending


@dataclass(frozen=True, slots=True)
class Frontier:
    """Right frontier of a tree: hashes of its perfect subtrees, largest (leftmost) first.

    There is one hash per set bit of ``size``, so at most 64; together with ``size`` it is
    all the state needed to keep appending or to compute the current root.
    """

    size: int
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_plan_size(self.size)
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes, "
                f"got {len(self.hashes)}"
            )
        for h in self.hashes:
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise ValueError("frontier hashes must be 32-byte values")

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        """``(level, index)`` of each frontier hash, matching ``hashes``."""
        return tuple(_cover(0, self.size))

    def root(self) -> bytes:
        """Current root hash (MTH of all leaves so far)."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Frontier:
        size = obj["size"]
        hashes = obj["hashes"]
        if not isinstance(size, int) or not isinstance(hashes, list):
            raise ValueError("frontier JSON needs an int size and a list of hex hashes")
        return cls(size, tuple(bytes.fromhex(h) for h in hashes))


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of appending leaves: the nodes to store and the frontier after them."""

    nodes: tuple[StoredNode, ...]
    frontier: Frontier


class TreeAppender:
    """Incremental RFC 9162 tree builder over a right frontier.

    Appending a leaf at index i stores the leaf hash and every node it completes
    (one per trailing 1-bit of i): on average two nodes per leaf, so storage is ~2n
    hashes and proofs never need more than O(log n) of them.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, frontier: Frontier | None = None) -> None:
        frontier = frontier or Frontier(0)
        self._size = frontier.size
        self._hashes = list(frontier.hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> Frontier:
        return Frontier(self._size, tuple(self._hashes))

    def root(self) -> bytes:
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def append(self, leaf_hash: bytes) -> list[StoredNode]:
        """Add one leaf hash; return the leaf node and the interior nodes it completes."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        if self._size >= MAX_TREE_SIZE:
            raise ValueError("tree is full")
        index = self._size
        nodes = [StoredNode(0, index, leaf_hash)]
        cur, level, hashes = leaf_hash, 0, self._hashes
        while (index >> level) & 1:
            cur = hash_children(hashes.pop(), cur)
            level += 1
            nodes.append(StoredNode(level, index >> level, cur))
        hashes.append(cur)
        self._size = index + 1
        return nodes

    def extend(self, leaf_hashes: Iterable[bytes]) -> AppendResult:
        """Append many leaves; return every node to store and the new frontier."""
        nodes: list[StoredNode] = []
        for h in leaf_hashes:
            nodes.extend(self.append(h))
        return AppendResult(tuple(nodes), self.frontier)

"""In-memory node store: the reference NodeReader, for tests, benchmarks and small tools."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .merkle import NodeId, StoredNode

__all__ = ["AsyncInMemoryNodeStore", "InMemoryNodeStore"]


class InMemoryNodeStore:
    """Dict-backed ``BatchNodeReader`` that counts reads, so tests can hold the O(log n) promise."""

    def __init__(self) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        self.reads = 0
        self.batches = 0

    def put(self, nodes: Iterable[StoredNode]) -> None:
        for node in nodes:
            self.nodes[(node.level, node.index)] = node.hash

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[(level, index)]

    def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.batches += 1
        self.reads += len(ids)
        return {i: self.nodes[i] for i in ids if i in self.nodes}


class AsyncInMemoryNodeStore(InMemoryNodeStore):
    """The same store behind the ``AsyncBatchNodeReader`` protocol (async ``get_many``)."""

    async def get_many(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:  # type: ignore[override]
        return InMemoryNodeStore.get_many(self, ids)

"""The audit store against the real database: append, dedup, proofs, signed heads, tampering.

The Merkle answers are checked against the library's list-based reference (`mmgen.auditlog`),
the entries against its offline verifier: what the server stores is what a compliance officer
can verify without trusting it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import NoteSigner, open_checkpoint
from mmgen.auditlog.verify import verify_checkpoint_consistency, verify_entry_inclusion, verify_log
from mmgen.consent.audit.checkpoints import Checkpointer, checkpoint_timestamp
from mmgen.consent.audit.service import AuditQueries
from mmgen.consent.audit.store import MongoAuditStore

ORIGIN = "test.local/audit"


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def queries(store: MongoAuditStore, signer: NoteSigner) -> AuditQueries:
    return AuditQueries(store, signer.verifier(), ORIGIN)


@pytest.fixture
def checkpointer(store: MongoAuditStore, signer: NoteSigner) -> Checkpointer:
    return Checkpointer(store, signer, origin=ORIGIN, every_entries=10, every_seconds=60)


async def fill(
    store: MongoAuditStore, item: Callable[..., dict[str, Any]], n: int, batch: int = 7
) -> None:
    seq = 1
    while seq <= n:
        items = [item(producer_seq=s) for s in range(seq, min(n, seq + batch - 1) + 1)]
        await store.append(items)
        seq += len(items)


async def all_entries(store: MongoAuditStore) -> list[dict[str, Any]]:
    head = await store.head()
    return [json.loads(d["e"]) async for d in store.iter_documents(0, head.size)]


async def test_append_dedups_on_event_id_and_chains(store: MongoAuditStore, item: Any) -> None:
    first = [item(producer_seq=1), item(producer_seq=2)]
    r1 = await store.append(first)
    r2 = await store.append([first[1], item(producer_seq=3), first[0]])
    assert [e.seq for e in r1.entries] == [0, 1]
    assert [e.seq for e in r2.entries] == [2] and r2.duplicates == 2
    entries = await all_entries(store)
    assert [e["producer_seq"] for e in entries] == [1, 2, 3]
    assert len({e["event_id"] for e in entries}) == 3
    assert verify_log(entries).valid
    # The entry holds ids and header fields only: exactly the library's 16 members.
    assert set(entries[0]) == {
        "seq", "event_id", "producer", "producer_seq", "event_type", "action", "subject_id",
        "actor_id", "actor_role", "purpose", "resource", "categories", "occurred_at",
        "recorded_at", "prev_hash", "hash",
    }  # fmt: skip


async def test_proofs_match_the_reference_tree(store: MongoAuditStore, item: Any) -> None:
    await fill(store, item, 45)
    entries = await all_entries(store)
    from mmgen.auditlog.entry import AuditEntry

    leaves = [AuditEntry.from_json(e).leaf_hash for e in entries]
    for size in (1, 2, 7, 16, 33, 45):
        assert await store.root(size) == merkle.root_from_leaf_hashes(leaves[:size])
        for seq in {0, size // 2, size - 1}:
            proof = await store.inclusion_proof(seq, size)
            assert proof == merkle.inclusion_proof(leaves[:size], seq)
        for old in {1, size // 3 or 1, size}:
            assert await store.consistency_proof(old, size) == merkle.consistency_proof(
                leaves[:size], old
            )
    assert (await store.head()).root() == merkle.root_from_leaf_hashes(leaves)


async def test_signed_heads_prove_inclusion_and_consistency(
    store: MongoAuditStore,
    item: Any,
    checkpointer: Checkpointer,
    queries: AuditQueries,
    signer: NoteSigner,
) -> None:
    await fill(store, item, 12)
    old = await checkpointer.sign_now()
    await fill(store, item, 30)
    new = await checkpointer.sign_now()
    assert old is not None and new is not None and (old.tree_size, new.tree_size) == (12, 42)
    cp = open_checkpoint(new.note, signer.verifier())
    assert checkpoint_timestamp(cp) == new.timestamp and cp.root_hash.hex() == new.root_hash
    proof = await queries.consistency(old.tree_size, new.tree_size)
    assert verify_checkpoint_consistency(old.note, new.note, proof, signer.verifier()).valid
    entry = await queries.entry(17)
    verify_entry_inclusion(entry, await queries.inclusion(17, 42), cp)
    # Another key's heads are refused.
    other = NoteSigner.generate(ORIGIN).verifier()
    assert not verify_checkpoint_consistency(old.note, new.note, proof, other).valid


async def test_verify_is_valid_on_an_intact_log(
    store: MongoAuditStore, item: Any, checkpointer: Checkpointer, queries: AuditQueries
) -> None:
    await fill(store, item, 25)
    await checkpointer.sign_now()
    whole = (await queries.verify(None, None)).to_json()
    assert whole["valid"] and whole["checked"] == 25 and whole["checkpoint_size"] == 25
    part = (await queries.verify(10, 19)).to_json()
    assert part["valid"] and part["checked"] == 10


async def tamper(
    store: MongoAuditStore, edit_log: Any, seq: int, change: Callable[[dict[str, Any]], None]
) -> None:
    doc = await store.get_document(seq)
    assert doc is not None
    entry = json.loads(doc["e"])
    change(entry)
    await edit_log.set(seq, "e", json.dumps(entry))


@pytest.mark.parametrize(
    "how", ["content", "rehashed", "deleted", "page", "reordered", "nodes", "copy"]
)
async def test_verify_finds_the_first_bad_entry(
    store: MongoAuditStore,
    item: Any,
    checkpointer: Checkpointer,
    queries: AuditQueries,
    edit_log: Any,
    how: str,
) -> None:
    await fill(store, item, 70)
    await checkpointer.sign_now()
    bad = 32 if how == "page" else 13
    if how == "content":
        await tamper(store, edit_log, bad, lambda e: e.update(purpose="security"))
    elif how == "rehashed":
        # A forger who recomputes this entry's hash still breaks the next link and the root.
        from mmgen.auditlog.entry import AuditEntry, chain_hash, entry_bytes

        def rehash(e: dict[str, Any]) -> None:
            e["actor_role"] = "compliance"
            e["hash"] = chain_hash(bytes.fromhex(e["prev_hash"]), entry_bytes(e)).hex()
            AuditEntry.from_json(e)

        await tamper(store, edit_log, bad, rehash)
    elif how == "deleted":
        await edit_log.remove(bad)
    elif how == "page":
        await edit_log.remove_page(bad)
    elif how == "reordered":
        a = await store.get_document(bad)
        b = await store.get_document(bad + 1)
        assert a is not None and b is not None
        await edit_log.set(bad, "e", b["e"])
        await edit_log.set(bad + 1, "e", a["e"])
    elif how == "nodes":
        await edit_log.set_node(0, bad, b"\x01" * 32)
    elif how == "copy":
        await edit_log.set(bad, "subject_id", "someone-else")
    result = (await queries.verify(None, None)).to_json()
    assert result["valid"] is False
    # A re-hashed forgery is caught at the entry itself: its stored leaf no longer matches
    # (and, were the nodes rewritten too, the next entry's prev_hash would not link).
    assert result["first_bad_seq"] == bad, result
    assert result["checked"] == bad


# --- pages and planned appends ------------------------------------------------------------


async def test_entries_cross_page_boundaries_in_any_batch_size(
    store: MongoAuditStore, item: Any
) -> None:
    from mmgen.consent.audit.store import PAGE_SIZE

    seq = 1
    for size in (1, PAGE_SIZE - 2, 1, PAGE_SIZE + 3, 2 * PAGE_SIZE, 5):
        await store.append([item(producer_seq=s) for s in range(seq, seq + size)])
        seq += size
    entries = await all_entries(store)
    assert [e["seq"] for e in entries] == list(range(seq - 1))
    assert verify_log(entries).valid
    pages = await store.pages.find({}).to_list(None)
    assert all(len(p["e"]) == p["k"] <= PAGE_SIZE for p in pages)
    assert sum(p["k"] for p in pages) == seq - 1
    for s in (0, PAGE_SIZE - 1, PAGE_SIZE, 2 * PAGE_SIZE + 1, seq - 2):
        doc = await store.get_document(s)
        assert doc is not None and json.loads(doc["e"]) == entries[s]
    assert await store.get_document(seq - 1) is None
    window = await store.window(PAGE_SIZE - 3, 2 * PAGE_SIZE + 2)
    assert [d["_id"] for d in window] == list(range(PAGE_SIZE - 3, 2 * PAGE_SIZE + 2))
    target = entries[PAGE_SIZE + 4]["subject_id"]
    hits = await store.window(0, seq - 1, {"subject_id": target})
    assert [d["_id"] for d in hits] == [PAGE_SIZE + 4]


async def test_a_stale_plan_changes_nothing_and_is_planned_again(
    store: MongoAuditStore, item: Any
) -> None:
    from mmgen.consent.audit.domain import AuditConflictError
    from mmgen.consent.audit.store import plan_append

    await store.append([item(producer_seq=s) for s in range(1, 31)])
    head = await store.head()
    producers = await store.progress({"identity"})
    batch = [item(producer_seq=s) for s in range(31, 40)]
    plan = plan_append(batch, head, set(), producers, datetime.now(UTC))
    # Another writer (the API's own entries, a second instance) appends first.
    other = await store.append([item(producer="audit", producer_seq=None)])
    before = await all_entries(store)
    with pytest.raises(AuditConflictError):
        await store.append_plan(plan)
    assert await all_entries(store) == before
    assert (await store.head()) == other.head
    # Planned again from the stored head, it goes through after the other entry.
    again = plan_append(
        batch, await store.head(), set(), await store.progress({"identity"}), datetime.now(UTC)
    )
    await store.append_plan(again)
    entries = await all_entries(store)
    assert [e["event_id"] for e in entries[31:]] == [i["event_id"] for i in batch]
    assert verify_log(entries).valid
    assert {d["_id"]: d for d in await store.producer_states()}["identity"]["contiguous"] == 39


@pytest.mark.parametrize("logged_in", ["partial page", "earlier page"])
@pytest.mark.parametrize("planned_into", ["partial page", "new page"])
async def test_a_plan_holding_a_logged_event_changes_nothing(
    store: MongoAuditStore, item: Any, logged_in: str, planned_into: str
) -> None:
    """An id the plan did not know was logged (looked up too early, or reused by a producer
    under a new producer_seq): the write refuses, whichever pages hold the two copies."""
    from mmgen.consent.audit.domain import AuditConflictError
    from mmgen.consent.audit.store import PAGE_SIZE, plan_append

    first = [item(producer_seq=s) for s in range(1, PAGE_SIZE + 6)]
    await store.append(first)  # one full page, 5 entries in the partial one
    logged = first[PAGE_SIZE + 2] if logged_in == "partial page" else first[3]
    reused = dict(logged, producer_seq=PAGE_SIZE + 50)
    fresh = [item(producer_seq=s) for s in range(PAGE_SIZE + 6, PAGE_SIZE + 6 + 40)]
    at = 3 if planned_into == "partial page" else PAGE_SIZE  # the partial page takes 27
    batch = [*fresh[:at], reused, *fresh[at:]]
    head = await store.head()
    plan = plan_append(batch, head, set(), {}, datetime.now(UTC))
    assert plan.extension is not None and plan.pages
    assert (reused["event_id"] in plan.extension.columns["event_id"]) == (at == 3)
    before = await all_entries(store)
    with pytest.raises(AuditConflictError):
        await store.append_plan(plan)
    assert await all_entries(store) == before and await store.head() == head
    seen = await store.seen_ids([i["event_id"] for i in batch])
    assert seen == {logged["event_id"]}
    result = await store.append_plan(plan_append(batch, head, seen, {}, datetime.now(UTC)))
    assert result.duplicates == 1 and len(result.entries) == 40
    entries = await all_entries(store)
    assert len({e["event_id"] for e in entries}) == len(entries) == PAGE_SIZE + 45
    assert verify_log(entries).valid


async def test_a_first_layout_log_is_moved_into_pages(
    store: MongoAuditStore, item: Any, checkpointer: Checkpointer, queries: AuditQueries
) -> None:
    """A log written one document per entry (before pages) is copied into pages on start."""
    from mmgen.consent.audit.store import V1_ENTRIES

    await fill(store, item, 45)
    await checkpointer.sign_now()
    expected = await all_entries(store)
    root = await store.root(45)
    rows = await store.window(0, 45, with_nodes=True)  # entries with their own nodes
    await store.db[V1_ENTRIES].insert_many(rows)  # the old layout: one row per document
    await store.pages.drop()
    await store.tiles.drop()
    await store.head_coll.update_one({"_id": "head"}, {"$unset": {"layout": ""}})
    await store.ensure_indexes()
    assert await all_entries(store) == expected
    assert await store.root(45) == root
    assert (await queries.verify(None, None)).result.valid
    assert V1_ENTRIES not in await store.db.list_collection_names()
    assert await store.migrate_v1() == 0  # marked: never again
    await store.append([item(producer_seq=46)])
    assert verify_log(await all_entries(store)).valid


def test_tiles_grow_at_their_end_and_proofs_read_few() -> None:
    """Every node has one place; a tile's nodes complete in position order, so appends only
    add to a tile's end; a proof at 1,000,000 entries reads at most a handful of tiles."""
    import random

    from mmgen.auditlog.merkle import TreeAppender
    from mmgen.consent.audit.store import TILE_HEIGHT, leaf_nodes, tile_of

    appender = TreeAppender()
    filled: dict[int, int] = {}
    for seq in range(5000):
        nodes = appender.append(random.randbytes(32))
        assert [(n.level, n.index) for n in nodes] == leaf_nodes(seq)
        for node in nodes:
            key, position = tile_of(node.level, node.index)
            assert position == filled.get(key, 0)
            filled[key] = position + 1
    assert max(filled.values()) == 2 ** (TILE_HEIGHT + 1) - 2  # a full tile
    rng = random.Random(3)
    size = 1_000_000
    for _ in range(300):
        inclusion = merkle.plan_inclusion(rng.randrange(size), size)
        consistency = merkle.plan_consistency(rng.randrange(1, size), size)
        for plan in (inclusion, consistency):
            assert len({tile_of(*node)[0] for node in plan.nodes}) <= 6


async def test_latest_checkpoint_follows_its_pointer_not_a_scan(store: Any) -> None:
    from mmgen.consent.audit.store import LATEST_CHECKPOINT, CheckpointRecord

    for size in (3, 1, 2):
        await store.save_checkpoint(CheckpointRecord(size, "00" * 32, "t", f"note {size}"))
    latest = await store.latest_checkpoint()
    assert latest is not None and latest.tree_size == 3
    # A head written behind the store's back is not found: reads go through the pointer.
    await store.checkpoints.insert_one(
        {"_id": 9, "root_hash": "00" * 32, "timestamp": "t", "note": "x"}
    )
    assert (await store.latest_checkpoint()).tree_size == 3  # type: ignore[union-attr]
    # A store from before the pointer: found once by sorting, then pointed at.
    await store.cursors.delete_one({"_id": LATEST_CHECKPOINT})
    assert (await store.latest_checkpoint()).tree_size == 9  # type: ignore[union-attr]
    assert (await store.cursors.find_one({"_id": LATEST_CHECKPOINT}))["tree_size"] == 9

"""The audit store against the real database: append, dedup, proofs, signed heads, tampering.

The Merkle answers are checked against the library's list-based reference (`mmgen.auditlog`),
the entries against its offline verifier: what the server stores is what a compliance officer
can verify without trusting it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
        await edit_log.set(bad, "n", b"\x01" * 32, 0)
    elif how == "copy":
        await edit_log.set(bad, "subject_id", "someone-else")
    result = (await queries.verify(None, None)).to_json()
    assert result["valid"] is False
    # A re-hashed forgery is caught at the entry itself: its stored leaf no longer matches
    # (and, were the nodes rewritten too, the next entry's prev_hash would not link).
    assert result["first_bad_seq"] == bad, result
    assert result["checked"] == bad

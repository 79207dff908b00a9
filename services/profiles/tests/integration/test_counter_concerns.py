"""The search index's per-token seqs are taken and read with `majority` (on the wire).

A seq handed out by a write a failover rolls back would be handed out again, to another
creator's posting of the same token (`mmgen.events.concerns`).
"""

from __future__ import annotations

import uuid
from typing import Any

from mmgen.events.mongo_testing import MAJORITY_READ, MAJORITY_WRITE, watched_database
from mmgen.profiles.adapters.mongo import TOKEN_HEADS, MongoSearchIndex


async def test_token_seqs_are_taken_and_read_with_majority(mongo_uri: str, mongo_db: Any) -> None:
    async with watched_database(mongo_uri, mongo_db.name) as (db, commands):
        index = MongoSearchIndex(db)
        await index.ensure_indexes()
        creator = str(uuid.uuid4())
        assert await index.replace(creator, {"berlin": 2, "model": 1}, 1_700_000_000_000) == 2
        takes = commands.named("findAndModify", TOKEN_HEADS)
        assert len(takes) == 2 and all(c["writeConcern"] == MAJORITY_WRITE for c in takes)
        assert await index.heads(["berlin", "model"]) == {"berlin": 1, "model": 1}
        (read,) = commands.named("find", TOKEN_HEADS)
        assert read["readConcern"] == MAJORITY_READ

"""Every query shape the Mongo adapters issue is answered from an index, never a collection
scan (INFRA.md: the database applies no limit early, and `_id` ranges scan)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mmgen.projects.testing import on_mongo


def stages(plan: dict[str, Any]) -> list[str]:
    found = [str(plan.get("stage"))]
    for key in ("inputStage", "inputStages"):
        child = plan.get(key)
        if isinstance(child, dict):
            found += stages(child)
        elif isinstance(child, list):
            for item in child:
                found += stages(item)
    return found


#: (collection, filter) of every read and every update/delete filter the adapters use.
SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("projects", {"_id": "p1"}),
    ("projects", {"_id": {"$in": ["p1", "p2"]}}),
    ("projects", {"_id": "p1", "version": {"$lt": 3}}),
    ("projects", {"member_ids": "u1"}),
    ("projects", {"owner_id": "u1"}),
    ("messages", {"_id": {"$in": ["p1:000000000001", "p1:000000000002"]}}),
    ("messages", {"author_id": "u1"}),
    ("files", {"_id": {"$in": ["p1:000000000001"]}}),
    ("files", {"file_id": "f1"}),
    ("files", {"uploader_id": "u1"}),
    ("sequences", {"_id": "message:p1"}),
    ("file_chunks", {"_id": {"$in": ["f1:00000000", "f1:00000001"]}}),
    ("file_chunks", {"file_id": "f1"}),
    ("file_uploads", {"_id": "f1"}),
    ("file_uploads", {"started_at": {"$lt": datetime(2026, 1, 1, tzinfo=UTC)}}),
    ("known_users", {"_id": "u1"}),
    ("disclosures", {"subject_ids": "u1"}),
    ("keystore", {"_id": "subject:u1"}),
]


@pytest.mark.parametrize(("collection", "query"), SHAPES, ids=[f"{c}:{q}" for c, q in SHAPES])
async def test_query_uses_an_index(mongo_db: Any, collection: str, query: dict[str, Any]) -> None:
    await on_mongo(mongo_db)  # creates the collections' indexes as the service does
    await mongo_db[collection].insert_one({"_id": "seed"})
    explained = await mongo_db[collection].find(query).explain()
    plan = stages(explained["queryPlanner"]["winningPlan"])
    assert "COLLSCAN" not in plan, plan
    assert "IXSCAN" in plan or "IDHACK" in plan or "EXPRESS_IXSCAN" in plan, plan

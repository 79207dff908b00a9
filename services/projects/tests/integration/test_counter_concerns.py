"""A project's message and file numbers are taken and read with `majority` (on the wire).

A number handed out by a write a failover rolls back would be handed out again, to another
message or file (`mmgen.events.concerns`).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mmgen.events.mongo_testing import MAJORITY_READ, MAJORITY_WRITE, watched_database
from mmgen.projects.adapters.mongo_threads import SEQUENCES, MongoFilesIndex, MongoMessagesIndex


@pytest.mark.parametrize("index", [MongoMessagesIndex, MongoFilesIndex])
async def test_thread_numbers_are_taken_and_read_with_majority(
    index: Any, mongo_uri: str, mongo_db: Any
) -> None:
    async with watched_database(mongo_uri, mongo_db.name) as (db, commands):
        rows = index(db)
        project = str(uuid.uuid4())
        assert [await rows.next_number(project) for _ in range(2)] == [1, 2]
        takes = commands.named("findAndModify", SEQUENCES)
        assert len(takes) == 2 and all(c["writeConcern"] == MAJORITY_WRITE for c in takes)
        assert await rows.last_number(project) == 2
        (read,) = commands.named("find", SEQUENCES)
        assert read["readConcern"] == MAJORITY_READ

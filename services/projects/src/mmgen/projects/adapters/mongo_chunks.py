"""`MongoChunkStore`: encrypted file chunks in the service's own database (GridFS-like).

`file_chunks` holds one document per chunk, `_id` = `<file id>:<index>`, with the nonce and
the AES-GCM ciphertext; reads fetch windows of chunks by lists of ids. `file_uploads` marks
uploads in progress (`started_at` indexed), so a crash's leftover chunks can be found and
purged. Nothing here is plaintext: the chunks are sealed before they reach this adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from mmgen.projects.adapters.ports import StoredChunk

CHUNKS = "file_chunks"
UPLOADS = "file_uploads"
#: Most stale uploads listed per purge round.
STALE_BATCH = 1000


def chunk_key(file_id: str, index: int) -> str:
    return f"{file_id}:{index:08d}"


class MongoChunkStore:
    def __init__(
        self, db: AsyncDatabase[Any], *, chunks: str = CHUNKS, uploads: str = UPLOADS
    ) -> None:
        self.chunks = db[chunks]
        self.uploads = db[uploads]

    async def ensure_indexes(self) -> None:
        await self.chunks.create_index([("file_id", ASCENDING)], name="file_id")
        await self.uploads.create_index([("started_at", ASCENDING)], name="started_at")

    async def begin(self, file_id: str, started_at: datetime) -> None:
        await self.uploads.insert_one({"_id": file_id, "started_at": started_at})

    async def put(self, chunk: StoredChunk) -> None:
        await self.chunks.insert_one(
            {
                "_id": chunk_key(chunk.file_id, chunk.index),
                "file_id": chunk.file_id,
                "index": chunk.index,
                "nonce": chunk.nonce,
                "data": chunk.data,
            }
        )

    async def read(self, file_id: str, indexes: Sequence[int]) -> list[StoredChunk]:
        if not indexes:
            return []
        keys = [chunk_key(file_id, i) for i in indexes]
        docs = await self.chunks.find({"_id": {"$in": keys}}).to_list(None)
        found = [
            StoredChunk(str(d["file_id"]), int(d["index"]), bytes(d["nonce"]), bytes(d["data"]))
            for d in docs
        ]
        return sorted(found, key=lambda c: c.index)

    async def finish(self, file_id: str) -> None:
        await self.uploads.delete_one({"_id": file_id})

    async def delete(self, file_id: str) -> int:
        result = await self.chunks.delete_many({"file_id": file_id})
        await self.uploads.delete_one({"_id": file_id})
        return result.deleted_count

    async def stale_uploads(self, started_before: datetime) -> list[str]:
        docs = await self.uploads.find({"started_at": {"$lt": started_before}}, {"_id": 1}).to_list(
            STALE_BATCH
        )
        return [str(d["_id"]) for d in docs]

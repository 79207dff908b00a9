"""Mongo read models of a project's thread: messages and file metadata, numbered per project.

Each message and file gets the project's next number (a counter document, `$inc`), and its
row's `_id` is `<project id>:<number>`. A page is then a list of computed keys (`_id` `$in`),
the one read the database answers without scanning (INFRA.md: `_id` ranges scan, limits
apply late). A number lost to a failed append is a gap, never a reuse. Rows hold the text or
file name only as the event's ciphertext under the author's key; erasure removes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.concerns import durable
from mmgen.events.envelope import PiiBlob, normalize_time
from mmgen.projects.adapters.ports import FileRow, MessageRow, slot

SEQUENCES = "sequences"
MESSAGES = "messages"
FILES = "files"
#: Keys per `$in` when a whole project's rows are deleted.
DELETE_BATCH = 1000
#: Tries of a counter upsert that lost the race to create the counter (one more suffices).
NEXT_NUMBER_ATTEMPTS = 5


def _blob(doc: dict[str, Any] | None) -> PiiBlob | None:
    return PiiBlob.model_validate(doc) if doc else None


def _blob_doc(blob: PiiBlob | None) -> dict[str, Any] | None:
    return blob.model_dump(mode="python") if blob is not None else None


class _Sequenced:
    """Per-project counters shared by a kind of row (`message`, `file`)."""

    def __init__(self, db: AsyncDatabase[Any], kind: str, collection: str) -> None:
        # The counters hand out numbers: majority, so a failover never gives one out twice.
        self.sequences = durable(db[SEQUENCES])
        self.coll = db[collection]
        self.kind = kind

    def _counter(self, project_id: str) -> str:
        return f"{self.kind}:{project_id}"

    async def next_number(self, project_id: str) -> int:
        """The project's next number. The first posts to a project race to create its counter:
        a losing upsert fails on the duplicate `_id` (SecantusDB may instead return no
        document); the counter exists by then, so incrementing again gives the next number."""
        for _ in range(NEXT_NUMBER_ATTEMPTS):
            try:
                doc = await self.sequences.find_one_and_update(
                    {"_id": self._counter(project_id)},
                    {"$inc": {"last": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue
            if doc is not None:
                return int(doc["last"])
        raise RuntimeError(f"no number for project {project_id}: the counter upsert kept failing")

    async def last_number(self, project_id: str) -> int:
        doc = await self.sequences.find_one({"_id": self._counter(project_id)})
        return int(doc["last"]) if doc else 0

    async def _keep_ahead(self, project_id: str, number: int) -> None:
        """A row rebuilt from the store keeps the counter past it (no number reused)."""
        with contextlib.suppress(DuplicateKeyError):  # a racing upsert created it
            await self.sequences.update_one(
                {"_id": self._counter(project_id)}, {"$max": {"last": number}}, upsert=True
            )

    async def _insert(self, project_id: str, number: int, doc: dict[str, Any]) -> bool:
        await self._keep_ahead(project_id, number)
        try:
            await self.coll.insert_one({"_id": slot(project_id, number), **doc})
        except DuplicateKeyError:
            return False
        return True

    async def _window(self, project_id: str, numbers: Sequence[int]) -> list[dict[str, Any]]:
        if not numbers:
            return []
        keys = [slot(project_id, n) for n in numbers]
        docs = await self.coll.find({"_id": {"$in": keys}}).to_list(None)
        return sorted(docs, key=lambda d: int(d["number"]), reverse=True)

    async def _delete_project(self, project_id: str) -> list[dict[str, Any]]:
        last = await self.last_number(project_id)
        deleted: list[dict[str, Any]] = []
        for start in range(1, last + 1, DELETE_BATCH):
            keys = [slot(project_id, n) for n in range(start, min(start + DELETE_BATCH, last + 1))]
            docs = await self.coll.find({"_id": {"$in": keys}}, {"_id": 1, "file_id": 1}).to_list(
                None
            )
            if docs:
                await self.coll.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
                deleted.extend(docs)
        return deleted


def _message_from_doc(doc: dict[str, Any]) -> MessageRow:
    return MessageRow(
        project_id=str(doc["project_id"]),
        number=int(doc["number"]),
        message_id=str(doc["message_id"]),
        author_id=doc.get("author_id"),
        posted_at=normalize_time(doc["posted_at"]),
        event_id=str(doc["event_id"]),
        schema_version=int(doc["schema_version"]),
        pii=_blob(doc.get("pii")),
        erased=bool(doc.get("erased", False)),
    )


class MongoMessagesIndex(_Sequenced):
    def __init__(self, db: AsyncDatabase[Any], *, collection: str = MESSAGES) -> None:
        super().__init__(db, "message", collection)

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("author_id", ASCENDING)], name="author_id")

    async def add(self, row: MessageRow) -> bool:
        return await self._insert(
            row.project_id,
            row.number,
            {
                "project_id": row.project_id,
                "number": row.number,
                "message_id": row.message_id,
                "author_id": row.author_id,
                "posted_at": row.posted_at,
                "event_id": row.event_id,
                "schema_version": row.schema_version,
                "pii": _blob_doc(row.pii),
                "erased": row.erased,
            },
        )

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[MessageRow]:
        return [_message_from_doc(d) for d in await self._window(project_id, numbers)]

    async def of_author(self, author_id: str, limit: int) -> list[MessageRow]:
        docs = await self.coll.find({"author_id": author_id}).to_list(limit)
        return sorted((_message_from_doc(d) for d in docs), key=lambda r: r.posted_at)

    async def count_of_author(self, author_id: str) -> int:
        return await self.coll.count_documents({"author_id": author_id})

    async def erase_author(self, author_id: str) -> int:
        result = await self.coll.update_many(
            {"author_id": author_id},
            {"$set": {"author_id": None, "pii": None, "erased": True}},
        )
        return result.modified_count

    async def delete_project(self, project_id: str) -> int:
        return len(await self._delete_project(project_id))


def _file_from_doc(doc: dict[str, Any]) -> FileRow:
    return FileRow(
        project_id=str(doc["project_id"]),
        number=int(doc["number"]),
        file_id=str(doc["file_id"]),
        uploader_id=doc.get("uploader_id"),
        content_type=str(doc["content_type"]),
        size=int(doc["size"]),
        chunks=int(doc["chunks"]),
        chunk_bytes=int(doc["chunk_bytes"]),
        key_id=str(doc["key_id"]),
        uploaded_at=normalize_time(doc["uploaded_at"]),
        event_id=str(doc["event_id"]),
        schema_version=int(doc["schema_version"]),
        name_pii=_blob(doc.get("name_pii")),
        erased=bool(doc.get("erased", False)),
    )


class MongoFilesIndex(_Sequenced):
    def __init__(self, db: AsyncDatabase[Any], *, collection: str = FILES) -> None:
        super().__init__(db, "file", collection)

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("file_id", ASCENDING)], name="file_id", unique=True)
        await self.coll.create_index([("uploader_id", ASCENDING)], name="uploader_id")

    async def add(self, row: FileRow) -> bool:
        return await self._insert(
            row.project_id,
            row.number,
            {
                "project_id": row.project_id,
                "number": row.number,
                "file_id": row.file_id,
                "uploader_id": row.uploader_id,
                "content_type": row.content_type,
                "size": row.size,
                "chunks": row.chunks,
                "chunk_bytes": row.chunk_bytes,
                "key_id": row.key_id,
                "uploaded_at": row.uploaded_at,
                "event_id": row.event_id,
                "schema_version": row.schema_version,
                "name_pii": _blob_doc(row.name_pii),
                "erased": row.erased,
            },
        )

    async def get(self, file_id: str) -> FileRow | None:
        doc = await self.coll.find_one({"file_id": file_id})
        return _file_from_doc(doc) if doc else None

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[FileRow]:
        return [_file_from_doc(d) for d in await self._window(project_id, numbers)]

    async def of_uploader(self, uploader_id: str, limit: int) -> list[FileRow]:
        docs = await self.coll.find({"uploader_id": uploader_id}).to_list(limit)
        return sorted((_file_from_doc(d) for d in docs), key=lambda r: r.uploaded_at)

    async def count_of_uploader(self, uploader_id: str) -> int:
        return await self.coll.count_documents({"uploader_id": uploader_id})

    async def erase_uploader(self, uploader_id: str) -> list[str]:
        docs = await self.coll.find({"uploader_id": uploader_id}, {"file_id": 1}).to_list(None)
        if not docs:
            return []
        await self.coll.update_many(
            {"_id": {"$in": [d["_id"] for d in docs]}},
            {"$set": {"uploader_id": None, "name_pii": None, "erased": True}},
        )
        return [str(d["file_id"]) for d in docs]

    async def delete_project(self, project_id: str) -> list[str]:
        return [str(d["file_id"]) for d in await self._delete_project(project_id)]

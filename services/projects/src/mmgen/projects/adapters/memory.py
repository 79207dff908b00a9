"""In-memory fakes of the read-model and storage ports, for unit tests (same contract as Mongo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from mmgen.projects.adapters.ports import (
    DisclosureRow,
    FileRow,
    KnownUser,
    MessageRow,
    ProjectRow,
    StoredChunk,
    slot,
)


class InMemoryProjectsReadModel:
    def __init__(self) -> None:
        self.rows: dict[str, ProjectRow] = {}

    async def put(self, row: ProjectRow) -> bool:
        current = self.rows.get(row.project_id)
        if current is not None and current.version >= row.version:
            return False
        if current is not None and current.anonymized:
            row = replace(row, title_ref=None, anonymized=True)
        self.rows[row.project_id] = row
        return True

    async def get(self, project_id: str) -> ProjectRow | None:
        return self.rows.get(project_id)

    async def many(self, project_ids: Sequence[str]) -> list[ProjectRow]:
        return [self.rows[i] for i in project_ids if i in self.rows]

    async def relations_of(self, user_id: str) -> dict[str, str]:
        return {
            i: "owner" if row.owner_id == user_id else row.members[user_id]
            for i, row in self.rows.items()
            if user_id in row.member_ids
        }

    async def ids_owned_by(self, owner_id: str) -> list[str]:
        return [i for i, row in self.rows.items() if row.owner_id == owner_id]

    async def anonymize(self, project_id: str) -> bool:
        row = self.rows.get(project_id)
        if row is None or row.anonymized:
            return False
        self.rows[project_id] = replace(row, title_ref=None, anonymized=True)
        return True


class _InMemorySequenced:
    def __init__(self) -> None:
        self.counters: dict[str, int] = {}

    async def next_number(self, project_id: str) -> int:
        self.counters[project_id] = self.counters.get(project_id, 0) + 1
        return self.counters[project_id]

    async def last_number(self, project_id: str) -> int:
        return self.counters.get(project_id, 0)

    def _keep_ahead(self, project_id: str, number: int) -> None:
        self.counters[project_id] = max(self.counters.get(project_id, 0), number)


class InMemoryMessagesIndex(_InMemorySequenced):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, MessageRow] = {}

    async def add(self, row: MessageRow) -> bool:
        self._keep_ahead(row.project_id, row.number)
        key = slot(row.project_id, row.number)
        if key in self.rows:
            return False
        self.rows[key] = row
        return True

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[MessageRow]:
        found = [self.rows.get(slot(project_id, n)) for n in sorted(numbers, reverse=True)]
        return [row for row in found if row is not None]

    async def of_author(self, author_id: str, limit: int) -> list[MessageRow]:
        rows = [r for r in self.rows.values() if r.author_id == author_id]
        return sorted(rows, key=lambda r: r.posted_at)[:limit]

    async def count_of_author(self, author_id: str) -> int:
        return sum(1 for r in self.rows.values() if r.author_id == author_id)

    async def erase_author(self, author_id: str) -> int:
        keys = [k for k, r in self.rows.items() if r.author_id == author_id]
        for key in keys:
            self.rows[key] = replace(self.rows[key], author_id=None, pii=None, erased=True)
        return len(keys)

    async def delete_project(self, project_id: str) -> int:
        keys = [k for k, r in self.rows.items() if r.project_id == project_id]
        for key in keys:
            del self.rows[key]
        return len(keys)


class InMemoryFilesIndex(_InMemorySequenced):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, FileRow] = {}

    async def add(self, row: FileRow) -> bool:
        self._keep_ahead(row.project_id, row.number)
        key = slot(row.project_id, row.number)
        if key in self.rows:
            return False
        self.rows[key] = row
        return True

    async def get(self, file_id: str) -> FileRow | None:
        return next((r for r in self.rows.values() if r.file_id == file_id), None)

    async def window(self, project_id: str, numbers: Sequence[int]) -> list[FileRow]:
        found = [self.rows.get(slot(project_id, n)) for n in sorted(numbers, reverse=True)]
        return [row for row in found if row is not None]

    async def of_uploader(self, uploader_id: str, limit: int) -> list[FileRow]:
        rows = [r for r in self.rows.values() if r.uploader_id == uploader_id]
        return sorted(rows, key=lambda r: r.uploaded_at)[:limit]

    async def count_of_uploader(self, uploader_id: str) -> int:
        return sum(1 for r in self.rows.values() if r.uploader_id == uploader_id)

    async def erase_uploader(self, uploader_id: str) -> list[str]:
        keys = [k for k, r in self.rows.items() if r.uploader_id == uploader_id]
        for key in keys:
            self.rows[key] = replace(self.rows[key], uploader_id=None, name_pii=None, erased=True)
        return [self.rows[k].file_id for k in keys]

    async def delete_project(self, project_id: str) -> list[str]:
        keys = [k for k, r in self.rows.items() if r.project_id == project_id]
        return [self.rows.pop(k).file_id for k in keys]


class InMemoryChunkStore:
    def __init__(self) -> None:
        self.chunks: dict[tuple[str, int], StoredChunk] = {}
        self.pending: dict[str, datetime] = {}

    async def begin(self, file_id: str, started_at: datetime) -> None:
        self.pending[file_id] = started_at

    async def put(self, chunk: StoredChunk) -> None:
        self.chunks[(chunk.file_id, chunk.index)] = chunk

    async def read(self, file_id: str, indexes: Sequence[int]) -> list[StoredChunk]:
        found = [self.chunks.get((file_id, i)) for i in sorted(indexes)]
        return [c for c in found if c is not None]

    async def finish(self, file_id: str) -> None:
        self.pending.pop(file_id, None)

    async def delete(self, file_id: str) -> int:
        keys = [k for k in self.chunks if k[0] == file_id]
        for key in keys:
            del self.chunks[key]
        self.pending.pop(file_id, None)
        return len(keys)

    async def stale_uploads(self, started_before: datetime) -> list[str]:
        return [f for f, at in self.pending.items() if at < started_before]


class InMemoryKnownUsers:
    def __init__(self) -> None:
        self.users: dict[str, KnownUser] = {}

    async def get(self, user_id: str) -> KnownUser | None:
        return self.users.get(user_id)

    async def register(self, user_id: str, role: str) -> None:
        self.users.setdefault(user_id, KnownUser(user_id, role, "active"))

    async def close(self, user_id: str) -> None:
        user = self.users.get(user_id)
        if user is None or user.status == "active":
            self.users[user_id] = KnownUser(user_id, user.role if user else None, "closed")

    async def forget(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        self.users[user_id] = KnownUser(user_id, None, "erased")
        return user is not None and user.status != "erased"


class InMemoryDisclosuresIndex:
    def __init__(self) -> None:
        self.rows: dict[str, DisclosureRow] = {}

    async def add(self, row: DisclosureRow) -> bool:
        if row.disclosure_id in self.rows:
            return False
        self.rows[row.disclosure_id] = row
        return True

    async def of_subject(self, subject_id: str, limit: int) -> list[DisclosureRow]:
        rows = [r for r in self.rows.values() if subject_id in r.subject_ids]
        return sorted(rows, key=lambda r: r.disclosed_at)[:limit]

    async def count_of_subject(self, subject_id: str) -> int:
        return sum(1 for r in self.rows.values() if subject_id in r.subject_ids)

    async def forget_subject(self, subject_id: str) -> int:
        keys = [k for k, r in self.rows.items() if subject_id in r.subject_ids]
        for key in keys:
            row = self.rows[key]
            others = tuple(s for s in row.subject_ids if s != subject_id)
            self.rows[key] = replace(row, subject_ids=others)
        return len(keys)

"""`MongoProjectsReadModel`: projects with their members, in the service's own database.

One document per project (`_id` = project id) holding its facts, its members and a pointer
to the event that carries its current title (still encrypted under `project:<id>`).
`member_ids` (owner first) is a multikey index: "my projects" is one indexed equality over the
caller's own rows. Writes are full states guarded by the stream version, so a late or
replayed projection never moves a project backwards; anonymisation sticks. The guard's
filter (`_id` and `version`) has an index of its own: the local database scans the whole
collection for `_id` beside any other field otherwise (INFRA.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import PiiBlob, normalize_time
from mmgen.projects.adapters.ports import ProjectRow
from mmgen.projects.domain.model import PersonalRef

PROJECTS = "projects"


def ref_to_doc(ref: PersonalRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "event_id": ref.event_id,
        "event_type": ref.event_type,
        "schema_version": ref.schema_version,
        "pii": ref.pii.model_dump(mode="python"),
    }


def ref_from_doc(doc: dict[str, Any] | None) -> PersonalRef | None:
    if not doc:
        return None
    return PersonalRef(
        event_id=str(doc["event_id"]),
        event_type=str(doc["event_type"]),
        schema_version=int(doc["schema_version"]),
        pii=PiiBlob.model_validate(doc["pii"]),
    )


def _to_doc(row: ProjectRow) -> dict[str, Any]:
    return {
        "owner_id": row.owner_id,
        "status": row.status,
        "budget_band": row.budget_band,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "status_changed_at": row.status_changed_at,
        "members": [{"user_id": u, "role": r} for u, r in sorted(row.members.items())],
        "member_ids": row.member_ids,
        "version": row.version,
    }


def _from_doc(doc: dict[str, Any]) -> ProjectRow:
    deadline = doc.get("deadline")
    anonymized = bool(doc.get("anonymized", False))
    return ProjectRow(
        project_id=str(doc["_id"]),
        owner_id=str(doc["owner_id"]),
        status=doc["status"],
        budget_band=doc.get("budget_band"),
        deadline=date.fromisoformat(deadline) if deadline else None,
        created_at=normalize_time(doc["created_at"]),
        updated_at=normalize_time(doc["updated_at"]),
        status_changed_at=normalize_time(doc["status_changed_at"]),
        members={m["user_id"]: m["role"] for m in doc.get("members") or ()},
        version=int(doc["version"]),
        # An anonymised project has no title; a pointer a stale fold wrote names a shredded key.
        title_ref=None if anonymized else ref_from_doc(doc.get("title_ref")),
        anonymized=anonymized,
    )


class MongoProjectsReadModel:
    def __init__(self, db: AsyncDatabase[Any], *, collection: str = PROJECTS) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("member_ids", ASCENDING)], name="member_ids")
        await self.coll.create_index([("owner_id", ASCENDING)], name="owner_id")
        await self.coll.create_index(
            [("_id", ASCENDING), ("version", ASCENDING)], name="id_version"
        )

    async def put(self, row: ProjectRow) -> bool:
        try:
            await self.coll.update_one(
                {"_id": row.project_id, "version": {"$lt": row.version}},
                {
                    "$set": {**_to_doc(row), "title_ref": ref_to_doc(row.title_ref)},
                    # once anonymised, always: a state folded before the shred cannot undo it
                    "$max": {"anonymized": row.anonymized},
                },
                upsert=True,
            )
        except DuplicateKeyError:  # the row is at this version or newer already
            return False
        return True

    async def get(self, project_id: str) -> ProjectRow | None:
        doc = await self.coll.find_one({"_id": project_id})
        return _from_doc(doc) if doc else None

    async def many(self, project_ids: Sequence[str]) -> list[ProjectRow]:
        if not project_ids:
            return []
        docs = await self.coll.find({"_id": {"$in": list(project_ids)}}).to_list(None)
        by_id = {str(d["_id"]): _from_doc(d) for d in docs}
        return [by_id[i] for i in project_ids if i in by_id]

    async def relations_of(self, user_id: str) -> dict[str, str]:
        docs = await self.coll.find({"member_ids": user_id}, {"owner_id": 1, "members": 1}).to_list(
            None
        )
        relations: dict[str, str] = {}
        for doc in docs:
            roles = {m["user_id"]: m["role"] for m in doc.get("members") or ()}
            owner = doc["owner_id"] == user_id
            if owner or user_id in roles:
                relations[str(doc["_id"])] = "owner" if owner else str(roles[user_id])
        return relations

    async def ids_owned_by(self, owner_id: str) -> list[str]:
        docs = await self.coll.find({"owner_id": owner_id}, {"_id": 1}).to_list(None)
        return [str(d["_id"]) for d in docs]

    async def anonymize(self, project_id: str) -> bool:
        before = await self.coll.find_one_and_update(
            {"_id": project_id},
            {"$set": {"anonymized": True, "title_ref": None}},
            projection={"anonymized": 1},
            return_document=ReturnDocument.BEFORE,
        )
        return before is not None and not before.get("anonymized", False)

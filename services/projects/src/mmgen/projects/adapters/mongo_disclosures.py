"""`MongoDisclosuresIndex`: disclosures by the subjects they concern (for exports and reports).

`subject_ids` is a multikey index, so a subject's disclosures are one indexed equality.
Erasing a subject removes their id from the disclosures naming them; the `share` entries in
the audit log remain the proof that the disclosure happened.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mmgen.events.envelope import normalize_time
from mmgen.projects.adapters.ports import DisclosureRow
from mmgen.projects.domain.events import Recipient

DISCLOSURES = "disclosures"


def _from_doc(doc: dict[str, Any]) -> DisclosureRow:
    return DisclosureRow(
        disclosure_id=str(doc["_id"]),
        project_id=str(doc["project_id"]),
        recipient=Recipient.model_validate(doc["recipient"]),
        purpose=str(doc["purpose"]),
        legal_basis=str(doc["legal_basis"]),
        categories=tuple(doc.get("categories") or ()),
        subject_ids=tuple(doc.get("subject_ids") or ()),
        disclosed_at=normalize_time(doc["disclosed_at"]),
        actor_id=doc.get("actor_id"),
    )


class MongoDisclosuresIndex:
    def __init__(self, db: AsyncDatabase[Any], *, collection: str = DISCLOSURES) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("subject_ids", ASCENDING)], name="subject_ids")

    async def add(self, row: DisclosureRow) -> bool:
        with contextlib.suppress(DuplicateKeyError):
            await self.coll.insert_one(
                {
                    "_id": row.disclosure_id,
                    "project_id": row.project_id,
                    "recipient": row.recipient.model_dump(),
                    "purpose": row.purpose,
                    "legal_basis": row.legal_basis,
                    "categories": list(row.categories),
                    "subject_ids": list(row.subject_ids),
                    "disclosed_at": row.disclosed_at,
                    "actor_id": row.actor_id,
                }
            )
            return True
        return False

    async def of_subject(self, subject_id: str, limit: int) -> list[DisclosureRow]:
        docs = await self.coll.find({"subject_ids": subject_id}).to_list(limit)
        return sorted((_from_doc(d) for d in docs), key=lambda r: r.disclosed_at)

    async def count_of_subject(self, subject_id: str) -> int:
        return await self.coll.count_documents({"subject_ids": subject_id})

    async def forget_subject(self, subject_id: str) -> int:
        result = await self.coll.update_many(
            {"subject_ids": subject_id}, {"$pull": {"subject_ids": subject_id}}
        )
        return result.modified_count

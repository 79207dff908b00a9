"""The read models on MongoDB (the service's own database), with bounded reads only.

Every read is by key, by a list of keys, by an indexed equality, or a bounded range on one
secondary index (INFRA.md: the local server never applies `limit` early and scans for `_id`
ranges). The search index keeps, per token, a counter of the sequence numbers it gave out;
a posting's `k` is `<token>|<seq, 12 digits>`, so "the token's postings from seq a to b" is
one bounded range of the unique `k` index, and "does creator c hold token t" is a read by
`_id` (`<token>|<creator>`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.operations import UpdateOne

from mmgen.events.concerns import durable
from mmgen.profiles.adapters.read_models import (
    TOMBSTONE_VERSION,
    ConsentGrant,
    IndexEntry,
    Membership,
    Posting,
    ProfileRow,
    plan_reindex,
)
from mmgen.profiles.domain.profile import ProfileDetails
from mmgen.profiles.domain.search import SIGNATURE_BITS, signature

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

PROFILES = "profiles"
POSTINGS = "profile_postings"
TOKEN_HEADS = "profile_token_heads"  # noqa: S105 - a collection name
CONSENT_GRANTS = "consent_grants"
PROJECT_MEMBERS = "project_members"
SEQ_DIGITS = 12
#: Documents asked for per batch of a window read (one round trip for a whole window).
WINDOW_BATCH = 10_000
INSERT_BATCH = 5_000
#: What a window read and a lookup by key fetch (the rest is known from the query).
WINDOW_FIELDS = {"_id": 0, "c": 1, "s": 1, "w": 1, "r": 1, "g": 1}
LOOKUP_FIELDS = {"_id": 1, "s": 1, "w": 1, "r": 1}
#: Places probed per read when checking that no posting holds a token any more.
GC_WINDOW = 1_000
DUPLICATE_KEY = 11000


def _ignore_duplicates(error: BulkWriteError) -> None:
    """Re-raise unless every failed write was a duplicate key (another writer got there first)."""
    if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
        raise error
    if error.details.get("writeConcernErrors"):
        raise error


async def versioned_set(
    coll: Any,
    key: str,
    version: int,
    fields: Mapping[str, Any],
    session: AsyncClientSession | None = None,
) -> bool:
    """Write `fields` at `version` unless a version at least as new is stored; True if written.

    Never through a duplicate-key error when a transaction is given: inside the consumer's
    transaction any failed write aborts the whole transaction (its commit then fails and the
    event is retried without end), so the stored version is read first. Two first writers
    racing conflict on the insert: in a transaction that is a transient error the consumer
    retries; without one, the loser re-applies its version guard.
    """
    values = {"v": version, **fields}
    updated = await coll.update_one(
        {"_id": key, "v": {"$lt": version}}, {"$set": values}, session=session
    )
    if updated.matched_count:
        return True
    if await coll.find_one({"_id": key}, {"_id": 1}, session=session) is not None:
        return False  # as new or newer
    try:
        await coll.insert_one({"_id": key, **values}, session=session)
    except DuplicateKeyError:
        if session is not None:
            raise
        updated = await coll.update_one({"_id": key, "v": {"$lt": version}}, {"$set": values})
        return updated.matched_count > 0
    return True


# --- profiles -------------------------------------------------------------------------------


class MongoProfileReadModel:
    def __init__(self, db: AsyncDatabase[Any], collection: str = PROFILES) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        """Lookups are by `_id` only: nothing to create."""

    @staticmethod
    def fields(row: ProfileRow) -> dict[str, Any]:
        """The profile fields of a row's document (`closed` and `erased` are set apart)."""
        return {
            "v": row.version,
            "details": row.details.model_dump(mode="json") if row.details else None,
            "published": row.published,
            "sensitive_event_id": row.sensitive_event_id,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "published_at": row.published_at,
        }

    async def put(self, row: ProfileRow) -> bool:
        fields = self.fields(row)
        try:
            result = await self.coll.update_one(
                {"_id": row.creator_id, "v": {"$lt": row.version}},
                {"$set": fields, "$setOnInsert": {"closed": False}},
                upsert=True,
            )
        except DuplicateKeyError:  # a version at least as new, or the tombstone, is there
            return False
        return result.matched_count > 0 or result.upserted_id is not None

    @staticmethod
    def _row(doc: Mapping[str, Any]) -> ProfileRow | None:
        if doc.get("erased") or not doc.get("details"):
            return None
        return ProfileRow(
            creator_id=str(doc["_id"]),
            version=int(doc["v"]),
            details=ProfileDetails.model_validate(doc["details"]),
            published=bool(doc.get("published")),
            closed=bool(doc.get("closed")),
            sensitive_event_id=doc.get("sensitive_event_id"),
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
            published_at=doc.get("published_at"),
        )

    async def get(self, creator_id: str) -> ProfileRow | None:
        doc = await self.coll.find_one({"_id": creator_id})
        return None if doc is None else self._row(doc)

    async def get_many(self, creator_ids: Sequence[str]) -> dict[str, ProfileRow]:
        if not creator_ids:
            return {}
        docs = await self.coll.find({"_id": {"$in": list(creator_ids)}}).to_list(None)
        rows = (self._row(doc) for doc in docs)
        return {row.creator_id: row for row in rows if row is not None}

    async def version(self, creator_id: str) -> int | None:
        doc = await self.coll.find_one({"_id": creator_id}, {"v": 1})
        return None if doc is None else int(doc.get("v", 0))

    async def close(self, creator_id: str, session: AsyncClientSession | None = None) -> None:
        await self.coll.update_one(
            {"_id": creator_id},
            {"$set": {"closed": True}, "$setOnInsert": {"v": 0, "details": None}},
            upsert=True,
            session=session,
        )

    async def erase(self, creator_id: str, session: AsyncClientSession | None = None) -> bool:
        before = await self.coll.find_one_and_replace(
            {"_id": creator_id, "details": {"$ne": None}, "erased": {"$ne": True}},
            {"erased": True, "closed": True, "v": TOMBSTONE_VERSION},
            return_document=ReturnDocument.BEFORE,
            session=session,
        )
        if before is None:  # no profile: a closed-account marker at most, nothing to keep
            await self.coll.delete_one(
                {"_id": creator_id, "erased": {"$ne": True}}, session=session
            )
            return False
        return True

    async def reset(self) -> None:
        await self.coll.delete_many({"closed": {"$ne": True}})
        await self.coll.update_many(
            {"closed": True, "erased": {"$ne": True}},
            {"$set": {"v": 0, "details": None, "published": False, "sensitive_event_id": None}},
        )


# --- search index ---------------------------------------------------------------------------


def _sig_bytes(tokens: Iterable[str]) -> bytes:
    return signature(tokens).to_bytes(SIGNATURE_BITS // 8, "big")


def posting_key(token: str, seq: int) -> str:
    return f"{token}|{seq:0{SEQ_DIGITS}d}"


def posting_id(token: str, creator_id: str) -> str:
    return f"{token}|{creator_id}"


class MongoSearchIndex:
    def __init__(
        self,
        db: AsyncDatabase[Any],
        *,
        postings: str = POSTINGS,
        heads: str = TOKEN_HEADS,
        lookup_chunk: int = 200,
    ) -> None:
        self.postings = db[postings]
        # The heads hand out each token's seqs: majority, so a failover never reuses one.
        self.heads_coll = durable(db[heads])
        self.lookup_chunk = lookup_chunk

    async def ensure_indexes(self) -> None:
        await self.postings.create_index([("k", ASCENDING)], unique=True, name="token_seq")
        await self.postings.create_index([("c", ASCENDING)], name="creator")

    @staticmethod
    def _posting(doc: Mapping[str, Any], token: str | None = None) -> Posting:
        """A posting from a document (`_id` is `<token>|<creator>`; `k` and `c` repeat it)."""
        if token is None:
            token, creator = str(doc["_id"]).rsplit("|", 1)
        else:
            creator = str(doc["c"])
        sig = doc.get("g")
        return Posting(
            token,
            creator,
            int(doc["s"]),
            int(doc["w"]),
            int(doc["r"]),
            int.from_bytes(sig, "big") if sig else 0,
        )

    def _doc(
        self, token: str, creator_id: str, seq: int, weight: int, at: int, sig: bytes
    ) -> dict[str, Any]:
        return {
            "_id": posting_id(token, creator_id),
            "k": posting_key(token, seq),
            "c": creator_id,
            "s": seq,
            "w": weight,
            "r": at,
            "g": sig,
        }

    async def _reserve(self, token: str, count: int) -> int:
        """Give out `count` sequence numbers of `token`; returns the first."""
        head = await self.heads_coll.find_one_and_update(
            {"_id": token},
            {"$inc": {"seq": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert head is not None  # an upsert returning the document after always finds one
        return int(head["seq"]) - count + 1

    async def _insert(self, docs: list[dict[str, Any]]) -> None:
        for start in range(0, len(docs), INSERT_BATCH):
            try:
                await self.postings.insert_many(docs[start : start + INSERT_BATCH], ordered=False)
            except BulkWriteError as error:
                _ignore_duplicates(error)

    async def replace(self, creator_id: str, tokens: Mapping[str, int], listed_at_ms: int) -> int:
        existing = [
            self._posting(d) async for d in self.postings.find({"c": creator_id}, LOOKUP_FIELDS)
        ]
        change = plan_reindex(existing, tokens, listed_at_ms)
        if change.delete:
            ids = [posting_id(t, creator_id) for t in change.delete]
            await self.postings.delete_many({"_id": {"$in": ids}})
            await self._forget_unused([t for t in change.delete if t not in change.insert])
        sig = _sig_bytes(tokens)
        docs = [
            self._doc(token, creator_id, await self._reserve(token, 1), weight, listed_at_ms, sig)
            for token, weight in change.insert.items()
        ]
        await self._insert(docs)
        if change.reweight:
            await self.postings.bulk_write(
                [
                    UpdateOne({"_id": posting_id(t, creator_id)}, {"$set": {"w": w}})
                    for t, w in change.reweight.items()
                ],
                ordered=False,
            )
        if change.resign:
            await self.postings.update_many({"c": creator_id}, {"$set": {"g": sig}})
        return len(docs) + len(change.reweight)

    async def add_new(self, entries: Sequence[IndexEntry]) -> int:
        needed = Counter(token for entry in entries for token in entry.tokens)
        next_seq = {token: await self._reserve(token, n) for token, n in needed.items()}
        docs = []
        for entry in entries:
            sig = _sig_bytes(entry.tokens)
            for token, weight in entry.tokens.items():
                docs.append(
                    self._doc(
                        token, entry.creator_id, next_seq[token], weight, entry.listed_at_ms, sig
                    )
                )
                next_seq[token] += 1
        await self._insert(docs)
        return len(docs)

    async def remove(self, creator_id: str, session: AsyncClientSession | None = None) -> int:
        held = await self.postings.find({"c": creator_id}, {"k": 1}, session=session).to_list(None)
        result = await self.postings.delete_many({"c": creator_id}, session=session)
        await self._forget_unused([str(d["k"]).rsplit("|", 1)[0] for d in held], session)
        return result.deleted_count

    async def _forget_unused(
        self, tokens: Sequence[str], session: AsyncClientSession | None = None
    ) -> None:
        """Drop the counters of tokens no posting holds any more, so a word of a profile that
        was erased (a rare name, say) is not kept even on its own.

        Emptiness is probed window by window from the newest place down: a used token answers
        at the first window, an unused one costs `head / window` reads of empty ranges. The
        counter is deleted only if it did not move meanwhile (a concurrent indexer keeps it).
        """
        for token in tokens:
            head = await self.heads_coll.find_one({"_id": token}, session=session)
            if head is None:
                continue
            top = int(head["seq"])
            high = top
            while high >= 1:
                low = max(1, high - GC_WINDOW + 1)
                bounds = {"$gte": posting_key(token, low), "$lte": posting_key(token, high)}
                if await self.postings.find_one({"k": bounds}, {"_id": 1}, session=session):
                    break
                high = low - 1
            else:
                await self.heads_coll.delete_one({"_id": token, "seq": top}, session=session)

    async def heads(self, tokens: Sequence[str]) -> dict[str, int]:
        docs = await self.heads_coll.find({"_id": {"$in": list(tokens)}}).to_list(None)
        return {str(d["_id"]): int(d["seq"]) for d in docs}

    async def window(self, token: str, low: int, high: int) -> list[Posting]:
        if high < low:
            return []
        bounds = {"$gte": posting_key(token, low), "$lte": posting_key(token, high)}
        cursor = self.postings.find({"k": bounds}, WINDOW_FIELDS, batch_size=WINDOW_BATCH)
        found = [self._posting(doc, token) async for doc in cursor]
        return sorted(found, key=lambda p: p.seq, reverse=True)

    async def lookup(self, keys: Sequence[tuple[str, str]]) -> list[Posting]:
        ids = [posting_id(token, creator) for token, creator in keys]
        chunks = [ids[i : i + self.lookup_chunk] for i in range(0, len(ids), self.lookup_chunk)]
        # A few `_id $in` lists side by side: one long list costs more than its chunks.
        results = await asyncio.gather(
            *(
                self.postings.find(
                    {"_id": {"$in": chunk}}, LOOKUP_FIELDS, batch_size=WINDOW_BATCH
                ).to_list(None)
                for chunk in chunks
            )
        )
        return [self._posting(doc) for docs in results for doc in docs]

    async def count(self, creator_id: str) -> int:
        return await self.postings.count_documents({"c": creator_id})

    async def clear(self) -> None:
        await self.postings.delete_many({})
        await self.heads_coll.delete_many({})


# --- what other services' events say ----------------------------------------------------------


class MongoConsentGrants:
    def __init__(self, db: AsyncDatabase[Any], collection: str = CONSENT_GRANTS) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        """Lookups are by `_id` (the creator) only."""

    async def record(self, grant: ConsentGrant, session: AsyncClientSession | None = None) -> bool:
        fields = {
            "granted": grant.granted,
            "event_id": grant.event_id,
            "decided_at": grant.decided_at,
        }
        return await versioned_set(self.coll, grant.creator_id, grant.version, fields, session)

    async def get(self, creator_id: str) -> ConsentGrant | None:
        doc = await self.coll.find_one({"_id": creator_id})
        if doc is None:
            return None
        return ConsentGrant(
            creator_id=creator_id,
            granted=bool(doc["granted"]),
            version=int(doc["v"]),
            event_id=str(doc["event_id"]),
            decided_at=doc.get("decided_at"),
        )

    async def is_granted(self, creator_id: str) -> bool:
        doc = await self.coll.find_one({"_id": creator_id}, {"granted": 1})
        return bool(doc and doc.get("granted"))

    async def delete(self, creator_id: str, session: AsyncClientSession | None = None) -> int:
        result = await self.coll.delete_one({"_id": creator_id}, session=session)
        return result.deleted_count


class MongoMemberships:
    def __init__(self, db: AsyncDatabase[Any], collection: str = PROJECT_MEMBERS) -> None:
        self.coll = db[collection]

    async def ensure_indexes(self) -> None:
        await self.coll.create_index([("user_id", ASCENDING)], name="user")

    async def record(
        self, membership: Membership, session: AsyncClientSession | None = None
    ) -> bool:
        key = f"{membership.project_id}|{membership.user_id}"
        fields = {
            "project_id": membership.project_id,
            "user_id": membership.user_id,
            "role": membership.role,
            "active": membership.active,
        }
        return await versioned_set(self.coll, key, membership.version, fields, session)

    async def of_user(self, user_id: str) -> list[Membership]:
        docs = await self.coll.find({"user_id": user_id}).to_list(None)
        return [
            Membership(
                project_id=str(d["project_id"]),
                user_id=str(d["user_id"]),
                role=d["role"],
                active=bool(d["active"]),
                version=int(d["v"]),
            )
            for d in docs
        ]

    async def delete_user(self, user_id: str, session: AsyncClientSession | None = None) -> int:
        result = await self.coll.delete_many({"user_id": user_id}, session=session)
        return result.deleted_count


async def ensure_indexes(*read_models: Any) -> None:
    """Create what each read model needs (idempotent); for the runtime's `on_prepare`."""
    for model in read_models:
        ensure = getattr(model, "ensure_indexes", None)
        if ensure is not None:
            await ensure()


__all__ = [
    "MongoConsentGrants",
    "MongoMemberships",
    "MongoProfileReadModel",
    "MongoSearchIndex",
    "ensure_indexes",
]

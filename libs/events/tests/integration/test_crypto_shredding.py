"""Crypto-shredding end to end on the real database: raw BSON bytes, erased folds, rotation."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Self

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.erased import ERASED, Erased, is_erased
from mmgen.events.keys import MasterKey, MasterKeyring
from mmgen.events.mapper import EventMapper, NewEvent
from mmgen.events.mongo_keystore import MongoKeystore
from mmgen.events.mongo_store import MongoEventStore
from mmgen.events.registry import EventData, EventRegistry, PersonalData
from mmgen.events.repository import Aggregate, EventSourcedRepository
from mmgen.events.snapshots import MongoSnapshotStore

registry = EventRegistry()


class ProfilePII(PersonalData):
    name: str
    phone: str


@registry.event("identity.UserRegistered", action="create", resource_type="user",
                categories=["contact"])  # fmt: skip
class UserRegistered(EventData):
    role: str
    personal: ClassVar = ProfilePII


class User(Aggregate):
    role: str = ""
    name: str | Erased = ERASED
    phone: str | Erased = ERASED

    def when(self, data: EventData, personal: Any) -> None:
        if isinstance(data, UserRegistered):
            self.role, self.name, self.phone = data.role, personal.name, personal.phone

    def snapshot_state(self) -> dict[str, Any] | None:
        return {"role": self.role, "name": self.name, "phone": self.phone}

    @classmethod
    def restore(cls, stream_id: str, state: dict[str, Any]) -> Self:
        user = cls(stream_id)
        user.role, user.name, user.phone = state["role"], state["name"], state["phone"]
        return user


async def build(db: Any, keyring: MasterKeyring) -> tuple[EventSourcedRepository, MongoKeystore]:
    keystore = MongoKeystore(db, keyring, buckets=8)
    await keystore.ensure_indexes()
    store = MongoEventStore(db, "identity")
    await store.ensure_indexes()
    snapshots = MongoSnapshotStore(db, keystore)
    await snapshots.ensure_indexes()
    mapper = EventMapper(registry, PersonalDataCipher(keystore), "identity")
    return EventSourcedRepository(store, mapper, snapshots=snapshots, snapshot_every=1), keystore


async def raw_bytes(db: Any) -> bytes:
    """Every byte of every document in the test database, as BSON."""
    raw = CodecOptions(document_class=RawBSONDocument)
    chunks: list[bytes] = []
    for name in await db.list_collection_names():
        async for doc in db[name].with_options(codec_options=raw).find({}):
            chunks.append(doc.raw)
    return b"".join(chunks)


async def test_shred_leaves_no_plaintext_folds_erased_and_survives_rotation(mongo_db: Any) -> None:
    old_master = MasterKey.generate("mk-old")
    repo, keystore = await build(mongo_db, MasterKeyring(old_master))
    people = {}
    for label in ("ann", "bob", "cy"):
        user_id = str(uuid.uuid4())
        secret = (f"{label}-{uuid.uuid4().hex}", f"+33-{uuid.uuid4().int % 10**9:09d}")
        user = User(user_id)
        user.record(
            NewEvent(
                UserRegistered(role="client"),
                ProfilePII(name=secret[0], phone=secret[1]),
                subject_id=user_id,
            )
        )
        await repo.save(user)
        people[label] = (user_id, secret)

    # Events never held plaintext; only snapshots (by design, deleted on shred) do.
    events_raw = b"".join(
        [d.raw async for d in repo.store.events.with_options(  # type: ignore[attr-defined]
            codec_options=CodecOptions(document_class=RawBSONDocument)).find({})]
    )  # fmt: skip
    for _, (name, phone) in people.values():
        assert name.encode() not in events_raw and phone.encode() not in events_raw
    ann_id, (ann_name, ann_phone) = people["ann"]
    assert ann_name.encode() in await raw_bytes(mongo_db)  # the snapshot holds it, for now

    await keystore.shred(f"subject:{ann_id}")

    everything = await raw_bytes(mongo_db)
    assert ann_name.encode() not in everything and ann_phone.encode() not in everything
    ann = await repo.get(User, ann_id)
    assert ann is not None and ann.role == "client"
    assert is_erased(ann.name) and is_erased(ann.phone)
    [event] = await repo.load(ann_id)
    assert event.erased and is_erased(event.personal.phone)
    for label in ("bob", "cy"):
        user_id, (name, phone) = people[label]
        other = await repo.get(User, user_id)
        assert other is not None and (other.name, other.phone) == (name, phone)

    # Rotate the master key: data keys re-wrapped, event documents untouched.
    before = {d["_id"]: d async for d in repo.store.events.find({})}  # type: ignore[attr-defined]
    new_master = MasterKey.generate("mk-new")
    rotating = MongoKeystore(mongo_db, MasterKeyring(new_master, retired=[old_master]), buckets=8)
    assert await rotating.rotate_master_key() == 2
    after = {d["_id"]: d async for d in repo.store.events.find({})}  # type: ignore[attr-defined]
    assert after == before
    fresh, _ = await build(mongo_db, MasterKeyring(new_master))  # the old key is gone
    for label in ("bob", "cy"):
        user_id, (name, phone) = people[label]
        [ev] = await fresh.load(user_id)
        assert (ev.personal.name, ev.personal.phone) == (name, phone)
    [ev] = await fresh.load(ann_id)
    assert ev.erased

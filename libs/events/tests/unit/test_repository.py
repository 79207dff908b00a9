"""Repository and aggregates over the in-memory fakes: fold, save, conflict, snapshots."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar, Self

import pytest

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.erased import ERASED, Erased, is_erased
from mmgen.events.errors import ConcurrencyError, OwnerErasedError
from mmgen.events.keys import InMemoryKeystore, MasterKey, MasterKeyring
from mmgen.events.mapper import EventMapper, NewEvent
from mmgen.events.registry import EventData, EventRegistry, PersonalData
from mmgen.events.repository import Aggregate, EventSourcedRepository
from mmgen.events.snapshots import InMemorySnapshotStore
from mmgen.events.store import InMemoryEventStore

registry = EventRegistry()


class ContactPII(PersonalData):
    email: str


@registry.event("identity.UserRegistered", action="create", resource_type="user",
                categories=["contact"])  # fmt: skip
class UserRegistered(EventData):
    role: str
    personal: ClassVar = ContactPII


@registry.event("identity.EmailChanged", action="update", resource_type="user",
                categories=["contact"])  # fmt: skip
class EmailChanged(EventData):
    personal: ClassVar = ContactPII


class User(Aggregate):
    role: str = ""
    email: str | Erased = ERASED
    changes: int = 0
    restored: bool = False

    def when(self, data: EventData, personal: Any) -> None:
        match data:
            case UserRegistered(role=role):
                self.role, self.email = role, personal.email
            case EmailChanged():
                self.email = personal.email
                self.changes += 1

    def snapshot_state(self) -> dict[str, Any] | None:
        return {"role": self.role, "email": self.email, "changes": self.changes}

    @classmethod
    def restore(cls, stream_id: str, state: dict[str, Any]) -> Self:
        user = cls(stream_id)
        user.role, user.email, user.changes = state["role"], state["email"], state["changes"]
        user.restored = True
        return user


@pytest.fixture
def parts() -> tuple[EventSourcedRepository, InMemoryKeystore, InMemorySnapshotStore]:
    keystore = InMemoryKeystore(MasterKeyring(MasterKey.generate()))
    snapshots = InMemorySnapshotStore(keystore)
    repo = EventSourcedRepository(
        InMemoryEventStore("identity"),
        EventMapper(registry, PersonalDataCipher(keystore), "identity"),
        snapshots=snapshots,
        snapshot_every=3,
    )
    return repo, keystore, snapshots


def register(user_id: str) -> User:
    user = User(user_id)
    user.record(
        NewEvent(UserRegistered(role="creator"), ContactPII(email="a@x.org"), subject_id=user_id)
    )
    return user


def change(user: User, email: str) -> None:
    user.record(NewEvent(EmailChanged(), ContactPII(email=email), subject_id=user.id))


async def test_save_then_get_folds_the_stream(parts: Any) -> None:
    repo, _, _ = parts
    user_id = str(uuid.uuid4())
    user = register(user_id)
    change(user, "b@x.org")
    stored = await repo.save(user)
    assert [e.stream_version for e in stored] == [1, 2]
    assert user.version == 2 and user.pending == []
    assert user.owners == {f"subject:{user_id}"}
    loaded = await repo.get(User, user_id)
    assert loaded is not None
    assert (loaded.role, loaded.email, loaded.changes, loaded.version) == (
        "creator",
        "b@x.org",
        1,
        2,
    )
    assert await repo.get(User, str(uuid.uuid4())) is None
    assert await repo.save(loaded) == []


async def test_concurrent_saves_from_the_same_version_conflict(parts: Any) -> None:
    repo, _, _ = parts
    user_id = str(uuid.uuid4())
    await repo.save(register(user_id))
    first, second = await repo.get(User, user_id), await repo.get(User, user_id)
    change(first, "one@x.org")
    change(second, "two@x.org")
    results = await asyncio.gather(repo.save(first), repo.save(second), return_exceptions=True)
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 1
    final = await repo.get(User, user_id)
    assert final is not None and final.version == 2


async def test_snapshots_are_used_and_purged_by_shred(parts: Any) -> None:
    repo, keystore, snapshots = parts
    user_id = str(uuid.uuid4())
    user = register(user_id)
    for i in range(3):
        change(user, f"{i}@x.org")
    await repo.save(user)  # version 4 crosses 3: snapshot taken
    snap = await snapshots.get(user_id)
    assert snap is not None and snap.version == 4 and snap.state["email"] == "2@x.org"
    change(user, "last@x.org")
    await repo.save(user)
    loaded = await repo.get(User, user_id)
    assert loaded is not None and loaded.restored
    assert (loaded.email, loaded.changes, loaded.version) == ("last@x.org", 4, 5)

    await keystore.shred(f"subject:{user_id}")
    assert await snapshots.get(user_id) is None
    erased = await repo.get(User, user_id)
    assert erased is not None and not erased.restored
    assert is_erased(erased.email) and erased.role == "creator" and erased.version == 5
    change(erased, "new@x.org")
    with pytest.raises(OwnerErasedError):
        await repo.save(erased)


async def test_load_and_decode_give_domain_events(parts: Any) -> None:
    repo, _, _ = parts
    user_id = str(uuid.uuid4())
    await repo.save(register(user_id))
    events = await repo.load(user_id)
    assert [type(e.data) for e in events] == [UserRegistered]
    decoded = await repo.decode(await repo.store.read_range(1, 2))
    assert decoded[0].personal == ContactPII(email="a@x.org")
    assert decoded[0].producer_seq == 1

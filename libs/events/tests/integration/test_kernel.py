"""The composed kernel on the real database and over fakes, through one entry point."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any, ClassVar

import pytest

from mmgen.events.errors import (
    EventRegistrationError,
    KeystoreError,
    UnknownSchemaVersionError,
)
from mmgen.events.kernel import EventKernel, in_memory_kernel, open_mongo_kernel
from mmgen.events.keys import MasterKeyring
from mmgen.events.mapper import NewEvent
from mmgen.events.registry import EventData, EventRegistry, PersonalData

registry = EventRegistry()


class NotePII(PersonalData):
    text: str


@registry.event("consent.NoteTaken", action="create", resource_type="note",
                categories=["communication"])  # fmt: skip
class NoteTaken(EventData):
    kind: str
    personal: ClassVar = NotePII


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def keyring() -> MasterKeyring:
    return MasterKeyring.from_settings("mk-a", b64key(), {"mk-old": b64key()})


@pytest.fixture(params=["memory", "mongo"])
async def kernel(request: pytest.FixtureRequest, mongo_db: Any) -> EventKernel:
    if request.param == "memory":
        return in_memory_kernel(producer="consent", registry=registry, keyring=keyring())
    return await open_mongo_kernel(
        mongo_db, producer="consent", registry=registry, keyring=keyring()
    )


async def test_write_read_shred_through_the_kernel(kernel: EventKernel) -> None:
    subject = str(uuid.uuid4())
    stream = f"note-{uuid.uuid4()}"
    [stored] = await kernel.repository.append(
        stream, 0, [NewEvent(NoteTaken(kind="call"), NotePII(text="secret"), subject_id=subject)]
    )
    assert stored.producer_seq == await kernel.store.last_seq()
    [read] = await kernel.repository.load(stream)
    assert read.personal == NotePII(text="secret")
    assert await kernel.shred(f"subject:{subject}") is True
    [erased] = await kernel.repository.load(stream)
    assert erased.erased and erased.data.kind == "call"
    await kernel.close()


def test_master_keyring_from_settings_checks_its_input() -> None:
    ring = keyring()
    assert ring.current.key_id == "mk-a" and [k.key_id for k in ring.retired] == ["mk-old"]
    assert "key=" not in repr(ring.current)
    with pytest.raises(KeystoreError):
        MasterKeyring.from_settings("mk", "not base64!")
    with pytest.raises(KeystoreError):
        MasterKeyring.from_settings("mk", base64.b64encode(b"short").decode())


def test_a_registry_with_a_hole_in_its_upcasters_is_refused_at_start() -> None:
    broken = EventRegistry()

    @broken.event("consent.Thing", version=2, action="create", resource_type="thing")
    class Thing(EventData):
        n: int

    with pytest.raises(EventRegistrationError, match="no upcaster"):
        in_memory_kernel(producer="consent", registry=broken)
    with pytest.raises(UnknownSchemaVersionError):
        broken.upcast("consent.Thing", 1, {}, None)

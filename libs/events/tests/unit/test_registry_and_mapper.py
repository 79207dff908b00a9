"""Registry (types, versions, upcasters, audit meaning) and mapper (encryption, erased reads)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mmgen.events.crypto import PersonalDataCipher
from mmgen.events.envelope import Actor, Envelope, Resource
from mmgen.events.erased import ERASED, Erased, is_erased
from mmgen.events.errors import (
    DataKeyMissingError,
    EventDataInvalidError,
    EventRegistrationError,
    OwnerErasedError,
    PersonalDataCorruptError,
    UnknownEventTypeError,
    UnknownSchemaVersionError,
)
from mmgen.events.keys import InMemoryKeystore, MasterKey, MasterKeyring
from mmgen.events.mapper import EventMapper, JsonTranscoder, NewEvent
from mmgen.events.registry import EventData, EventRegistry, PersonalData

registry = EventRegistry()


class UserRegisteredPII(PersonalData):
    name: str
    email: str


@registry.event(
    "identity.UserRegistered",
    version=2,
    action="create",
    resource_type="user",
    categories=["contact", "business"],
)
class UserRegistered(EventData):
    role: str
    locale: str
    personal: ClassVar = UserRegisteredPII


@registry.upcaster("identity.UserRegistered", from_version=1)
def _user_registered_v1(
    data: dict[str, Any], personal: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """v1 had no locale and called the name `full_name`."""
    if personal is not None:
        personal = {"name": personal.pop("full_name"), **personal}
    return {**data, "locale": "en"}, personal


class RequirementsPII(PersonalData):
    requirements: str


@registry.event(
    "projects.RequirementsSet",
    action="update",
    resource_type="project",
    categories=["project"],
    owner="resource",
)
class RequirementsSet(EventData):
    personal: ClassVar = RequirementsPII


@registry.event("identity.UserClosed", action="delete", resource_type="user")
class UserClosed(EventData):
    reason: str


def make_mapper(keystore: InMemoryKeystore | None = None) -> tuple[EventMapper, InMemoryKeystore]:
    ks = keystore or InMemoryKeystore(MasterKeyring(MasterKey.generate()))
    return EventMapper(registry, PersonalDataCipher(ks), producer="identity"), ks


def registered(subject: str, email: str = "ann@example.org") -> NewEvent[UserRegistered]:
    return NewEvent(
        UserRegistered(role="client", locale="fr"),
        personal=UserRegisteredPII(name="Ann Example", email=email),
        subject_id=subject,
        actor=Actor(id=subject, role="client"),
        purpose="account",
    )


async def test_envelope_carries_audit_meaning_and_no_plaintext() -> None:
    mapper, _ = make_mapper()
    subject = str(uuid.uuid4())
    env = await mapper.to_envelope(registered(subject), f"user-{subject}", 1)
    assert env.event_type == "identity.UserRegistered"
    assert env.schema_version == 2
    assert (env.action, env.resource, env.categories) == (
        "create",
        Resource(type="user", id=f"user-{subject}"),
        ("contact", "business"),
    )
    assert env.data == {"role": "client", "locale": "fr"}
    assert env.pii is not None and env.pii.owner == f"subject:{subject}"
    wire = env.to_wire()
    assert b"Ann Example" not in wire and b"ann@example.org" not in wire
    assert b"Ann Example" not in env.pii.ciphertext


async def test_round_trip_decrypts_and_validates() -> None:
    mapper, _ = make_mapper()
    subject = str(uuid.uuid4())
    env = await mapper.to_envelope(registered(subject), "s-1", 1)
    event = await mapper.to_domain(Envelope.from_wire(env.to_wire()))
    assert event.data == UserRegistered(role="client", locale="fr")
    assert event.personal == UserRegisteredPII(name="Ann Example", email="ann@example.org")
    assert not event.erased
    assert (event.stream_id, event.stream_version, event.subject_id) == ("s-1", 1, subject)


async def test_shredded_owner_reads_as_erased_markers_not_errors() -> None:
    mapper, ks = make_mapper()
    ann, bob = str(uuid.uuid4()), str(uuid.uuid4())
    env_ann = await mapper.to_envelope(registered(ann), "s-a", 1)
    env_bob = await mapper.to_envelope(registered(bob, "bob@example.org"), "s-b", 1)
    await ks.shred(f"subject:{ann}")
    event = await mapper.to_domain(env_ann)
    assert event.erased
    assert is_erased(event.personal) and event.personal == ERASED
    assert is_erased(event.personal.email) and not event.personal.email
    assert event.personal.owner == f"subject:{ann}"
    assert event.data.role == "client"  # public data survives
    assert (await mapper.to_domain(env_bob)).personal.email == "bob@example.org"
    with pytest.raises(OwnerErasedError):
        await mapper.to_envelope(registered(ann), "s-a", 2)


async def test_missing_key_that_was_not_shredded_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mapper, _ = make_mapper()
    env = await mapper.to_envelope(registered(str(uuid.uuid4())), "s-1", 1)
    stranger, _ = make_mapper()  # another keystore: the key is simply not there
    with caplog.at_level(logging.ERROR), pytest.raises(DataKeyMissingError):
        await stranger.to_domain(env)
    assert env.event_id in caplog.text and "missing" in caplog.text


async def test_ciphertext_is_bound_to_its_event_id() -> None:
    mapper, _ = make_mapper()
    subject = str(uuid.uuid4())
    first = await mapper.to_envelope(registered(subject), "s-1", 1)
    second = await mapper.to_envelope(registered(subject, "x@example.org"), "s-1", 2)
    swapped = second.model_copy(update={"pii": first.pii})
    with pytest.raises(PersonalDataCorruptError):
        await mapper.to_domain(swapped)


async def test_resource_owned_personal_data_uses_the_resource_key() -> None:
    mapper, ks = make_mapper()
    project = str(uuid.uuid4())
    env = await mapper.to_envelope(
        NewEvent(RequirementsSet(), personal=RequirementsPII(requirements="shoot in Paris")),
        project,
        1,
    )
    assert env.pii is not None and env.pii.owner == f"project:{project}"
    assert env.subject_id is None
    await ks.shred(f"project:{project}")
    assert (await mapper.to_domain(env)).erased


async def test_event_without_personal_part() -> None:
    mapper, _ = make_mapper()
    env = await mapper.to_envelope(NewEvent(UserClosed(reason="asked")), "s-1", 3)
    assert env.pii is None and env.action == "delete"
    event = await mapper.to_domain(env)
    assert event.personal is None and not event.erased


async def test_envelope_takes_the_active_span_as_traceparent_unless_one_is_given() -> None:
    mapper, _ = make_mapper()
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x5B8EFFF798038103D269B633813FC60C,
            span_id=0xEEE19B7EC3C1B174,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    linked = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with trace.use_span(span):
        stamped = await mapper.to_envelope(NewEvent(UserClosed(reason="r")), "s-1", 1)
        given = await mapper.to_envelope(
            NewEvent(UserClosed(reason="r"), traceparent=linked), "s-2", 1
        )
    outside = await mapper.to_envelope(NewEvent(UserClosed(reason="r")), "s-3", 1)
    assert stamped.traceparent == "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01"
    assert given.traceparent == linked
    assert outside.traceparent is None


async def test_personal_fields_need_an_owner_and_the_declared_model() -> None:
    mapper, _ = make_mapper()
    event = registered("x")
    with pytest.raises(EventDataInvalidError):
        await mapper.to_envelope(NewEvent(event.data, personal=event.personal), "s", 1)
    with pytest.raises(EventDataInvalidError):
        await mapper.to_envelope(
            NewEvent(event.data, personal=RequirementsPII(requirements="x"), subject_id="x"), "s", 1
        )


async def test_old_versions_are_upcast_on_read_including_personal_fields() -> None:
    mapper, ks = make_mapper()
    subject = str(uuid.uuid4())
    event_id = str(uuid.uuid4())
    plaintext = JsonTranscoder().encode({"full_name": "Old Name", "email": "old@example.org"})
    pii = await PersonalDataCipher(ks).encrypt(f"subject:{subject}", event_id, plaintext)
    v1 = Envelope(
        event_id=event_id,
        event_type="identity.UserRegistered",
        schema_version=1,
        producer="identity",
        stream_id="s-old",
        stream_version=1,
        subject_id=subject,
        action="create",
        resource=Resource(type="user", id="s-old"),
        data={"role": "creator"},
        pii=pii,
    )
    event = await mapper.to_domain(v1)
    assert event.data == UserRegistered(role="creator", locale="en")
    assert event.personal == UserRegisteredPII(name="Old Name", email="old@example.org")
    await ks.shred(f"subject:{subject}")
    erased = await mapper.to_domain(v1)  # the upcaster sees personal=None and copes
    assert erased.data.locale == "en" and erased.erased


async def test_an_upcaster_may_read_the_envelope_a_field_lived_in() -> None:
    """A step registered `with_envelope` gets the stored envelope (here: the subject id, which
    version 1 kept only in the header); without an envelope it cannot run and says so."""
    reg = EventRegistry()

    @reg.event("svc.Erased", version=2, action="erase", resource_type="subject")
    class Erased2(EventData):
        subject_id: str
        count: int

    @reg.upcaster("svc.Erased", from_version=1, with_envelope=True)
    def _v1(
        data: dict[str, Any], personal: dict[str, Any] | None, envelope: Envelope
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return {"subject_id": envelope.subject_id, "count": data["n"]}, personal

    reg.check()
    ks = InMemoryKeystore(MasterKeyring(MasterKey.generate()))
    mapper = EventMapper(reg, PersonalDataCipher(ks), producer="svc")
    subject = str(uuid.uuid4())
    v1 = Envelope(
        event_type="svc.Erased",
        schema_version=1,
        producer="svc",
        stream_id="erasure-1",
        stream_version=1,
        subject_id=subject,
        action="erase",
        resource=Resource(type="subject", id=subject),
        data={"n": 3},
    )
    assert (await mapper.to_domain(v1)).data == Erased2(subject_id=subject, count=3)
    with pytest.raises(UnknownSchemaVersionError, match="needs the envelope"):
        reg.upcast("svc.Erased", 1, {"n": 3}, None)
    with pytest.raises(EventRegistrationError, match="two upcasters"):
        reg.upcaster("svc.Erased", from_version=1)(_v1)


async def test_unknown_type_or_version_is_a_clear_error() -> None:
    mapper, _ = make_mapper()
    env = await mapper.to_envelope(NewEvent(UserClosed(reason="r")), "s", 1)
    with pytest.raises(UnknownEventTypeError, match=r"identity\.Nope"):
        await mapper.to_domain(env.model_copy(update={"event_type": "identity.Nope"}))
    with pytest.raises(UnknownSchemaVersionError, match="newer producer"):
        await mapper.to_domain(env.model_copy(update={"schema_version": 2}))
    with pytest.raises(EventDataInvalidError):
        await mapper.to_domain(env.model_copy(update={"data": {"reason": 5}}))


def test_registration_mistakes_are_refused() -> None:
    reg = EventRegistry()

    class Pii(PersonalData):
        email: str

    def declare(event_type: str = "svc.Thing", **kw: Any) -> Any:
        kw.setdefault("action", "create")
        kw.setdefault("resource_type", "thing")
        return reg.event(event_type, **kw)

    with pytest.raises(EventRegistrationError):
        declare("bad name")
    with pytest.raises(EventRegistrationError):
        declare(action="steal")
    with pytest.raises(EventRegistrationError):
        declare(categories=["gossip"])

    class Overlap(EventData):
        email: str
        personal: ClassVar = Pii

    with pytest.raises(EventRegistrationError):
        declare()(Overlap)

    class NotPersonal(EventData):
        personal: ClassVar = dict  # type: ignore[assignment]

    with pytest.raises(EventRegistrationError):
        declare()(NotPersonal)

    class Fine(EventData):
        n: int

    declare(version=3)(Fine)
    with pytest.raises(EventRegistrationError):
        declare()(Fine)
    with pytest.raises(EventRegistrationError, match="no upcaster from version 1"):
        reg.check()
    reg.upcaster("svc.Thing", from_version=1)(lambda d, p: (d, p))
    reg.upcaster("svc.Thing", from_version=2)(lambda d, p: (d, p))
    reg.check()
    with pytest.raises(EventRegistrationError):
        reg.upcaster("svc.Thing", from_version=2)(lambda d, p: (d, p))
    registry.check()


def test_erased_marker_behaves_like_a_value() -> None:
    assert Erased("subject:1") == ERASED and hash(Erased()) == hash(ERASED)
    assert repr(ERASED) == "<erased>" and ERASED.to_json() == {"erased": True}
    assert ERASED.any_field is ERASED
    with pytest.raises(AttributeError):
        _ = ERASED.__fspath__

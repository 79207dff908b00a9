"""The erasure contract over the in-memory kernel: parsing, one answer per command."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mmgen.events.kernel import in_memory_kernel
from mmgen.events.registry import EventRegistry
from mmgen.runtime.commands import CommandVerifier, pinned_command_keys
from mmgen.runtime.contract import (
    Footprint,
    SubjectExport,
    register_standard_events,
    well_formed_id,
)
from mmgen.runtime.erasure import (
    AnonymizationOutcome,
    AnonymizeOrder,
    CommandInvalidError,
    EraseOrder,
    ErasureCommands,
    ErasureOutcome,
    answer_id,
    parse_anonymize,
    parse_erase,
)
from mmgen.runtime.testing import COMMAND_KEYS, anonymize_command, erase_command, signed

VERIFIER = CommandVerifier(pinned_command_keys(COMMAND_KEYS))


class RecordingParticipant:
    """A participant that records the orders it was given and answers fixed counts."""

    def __init__(self) -> None:
        self.erased: list[EraseOrder] = []
        self.anonymized: list[AnonymizeOrder] = []

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        self.erased.append(order)
        held = sorted(order.categories_held & {"payment"})
        return ErasureOutcome(
            keys_shredded=0 if held else 1,
            records_deleted={"contact": 2},
            categories_held=held,
        )

    async def anonymize_resource(self, order: AnonymizeOrder) -> AnonymizationOutcome:
        self.anonymized.append(order)
        return AnonymizationOutcome(keys_shredded=1, records_anonymized={"project": 3})

    async def export(self, subject_id: str) -> SubjectExport:
        raise AssertionError("not used")

    async def footprint(self, subject_id: str) -> Footprint:
        raise AssertionError("not used")


def _kernel_and_events(service: str = "svc"):  # type: ignore[no-untyped-def]
    registry = EventRegistry()
    events = register_standard_events(registry, service)
    return in_memory_kernel(producer=service, registry=registry), events


def test_standard_events_have_the_same_fields_in_every_service() -> None:
    _, a = _kernel_and_events("identity")
    _, b = _kernel_and_events("consent")
    for suffix in ("AccessDenied", "DataAccessed", "SubjectExported", "SubjectErased"):
        assert set(getattr(a, suffix).model_fields) == set(getattr(b, suffix).model_fields)
    assert a.event_type("SubjectErased") == "identity.SubjectErased"
    assert set(a.SubjectErased.model_fields) == {
        "request_id",
        "subject_id",
        "keys_shredded",
        "records_deleted",
        "records_anonymized",
        "categories_held",
    }


def test_parse_erase_refuses_a_command_without_a_well_formed_subject() -> None:
    command = erase_command(str(uuid.uuid4()))
    bad = command.model_copy(update={"subject_id": "x" * 300, "data": {"subject_id": "x" * 300}})
    with pytest.raises(CommandInvalidError):
        parse_erase(bad)
    unknown = command.model_copy(
        update={"data": {**command.data, "categories_held": ["secrets-of-state"]}}
    )
    with pytest.raises(CommandInvalidError):
        parse_erase(unknown)
    order = parse_erase(erase_command(command.subject_id or "", held=["payment"]))
    assert order.categories_held == frozenset({"payment"})


def test_parse_anonymize_needs_a_resource() -> None:
    command = anonymize_command("project", str(uuid.uuid4()))
    assert parse_anonymize(command).resource_type == "project"
    with pytest.raises(CommandInvalidError):
        parse_anonymize(command.model_copy(update={"data": {"request_id": "r"}}))


async def test_a_redelivered_erase_command_records_one_answer() -> None:
    kernel, events = _kernel_and_events()
    participant = RecordingParticipant()
    commands = ErasureCommands(participant, kernel.repository, events, VERIFIER)
    subject = str(uuid.uuid4())
    command = erase_command(subject, held=["payment"])

    await commands.handle(command)
    await commands.handle(command)

    stored = await kernel.store.read_range(1, 100)
    answers = [e for e in stored if e.event_type == "svc.SubjectErased"]
    assert len(answers) == 1
    assert answers[0].event_id == answer_id(command, "svc")
    assert answers[0].subject_id == subject
    assert answers[0].causation_id == command.event_id
    assert answers[0].data["categories_held"] == ["payment"]
    assert answers[0].data["records_deleted"] == {"contact": 2}
    assert answers[0].action == "erase"
    # Done outside any transaction, the work is kept with its counts: a redelivery answers
    # from them and does not redo it.
    assert len(participant.erased) == 1


class _RolledBackOnce:
    """A repository whose first append fails as a rolled-back transaction would."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository
        self.store = repository.store
        self.failed = False

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("WriteConflict: the transaction is rolled back and run again")
        return await self.repository.append(*args, **kwargs)


class ShreddingParticipant(RecordingParticipant):
    """Shreds once: a second run finds the key gone and nothing left to delete."""

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        self.erased.append(order)
        first = len(self.erased) == 1
        return ErasureOutcome(
            keys_shredded=int(first), records_deleted={"contact": 2} if first else {}
        )


async def test_a_run_again_after_a_rollback_answers_with_what_the_first_run_did() -> None:
    kernel, events = _kernel_and_events()
    participant = ShreddingParticipant()
    commands = ErasureCommands(participant, _RolledBackOnce(kernel.repository), events, VERIFIER)  # type: ignore[arg-type]
    command = erase_command(str(uuid.uuid4()))
    # In a transaction (a session): its writes may be rolled back, so a run again redoes them.
    order = parse_erase(command, session=_NoSession())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await commands.erase(order)
    await commands.erase(order)  # the consumer runs the transaction again

    [answer] = [e for e in await kernel.store.read_range(1, 10) if e.event_type.endswith("Erased")]
    assert answer.data["keys_shredded"] == 1
    assert answer.data["records_deleted"] == {"contact": 2}
    assert len(participant.erased) == 2


class _NoSession:
    """Stands for the consumer's session over the in-memory store, which takes none."""


async def test_work_prepared_before_the_transaction_is_not_redone_in_it() -> None:
    kernel, events = _kernel_and_events()
    participant = ShreddingParticipant()
    commands = ErasureCommands(participant, _RolledBackOnce(kernel.repository), events, VERIFIER)  # type: ignore[arg-type]
    command = erase_command(str(uuid.uuid4()))
    await commands.prepare(command)
    with pytest.raises(RuntimeError):
        await commands.handle(command)
    await commands.handle(command)  # the consumer runs the transaction again

    [answer] = [e for e in await kernel.store.read_range(1, 10) if e.event_type.endswith("Erased")]
    assert answer.data["keys_shredded"] == 1
    assert answer.data["records_deleted"] == {"contact": 2}
    assert len(participant.erased) == 1


class FailsAfterShredding(RecordingParticipant):
    """Shreds the subject's key, then fails once (its database gone) before it can finish."""

    def __init__(self, keystore: Any) -> None:
        super().__init__()
        self.keystore = keystore

    async def erase_subject(self, order: EraseOrder) -> ErasureOutcome:
        self.erased.append(order)
        owner = f"subject:{order.subject_id}"
        shredded = int(await self.keystore.shred(owner, by=order.command.event_id))
        if len(self.erased) == 1:
            raise ConnectionError("the database went away after the key was shredded")
        return ErasureOutcome(keys_shredded=shredded)


async def test_an_erasure_failing_after_its_shred_still_answers_the_key_shredded() -> None:
    kernel, events = _kernel_and_events()
    participant = FailsAfterShredding(kernel.keystore)
    commands = ErasureCommands(participant, kernel.repository, events, VERIFIER)
    subject = str(uuid.uuid4())
    await kernel.keystore.key_for_write(f"subject:{subject}")
    command = erase_command(subject)
    with pytest.raises(ConnectionError):
        await commands.prepare(command)
    await commands.prepare(command)  # the consumer delivers the command again
    await commands.handle(command)

    [answer] = [e for e in await kernel.store.read_range(1, 10) if e.event_type.endswith("Erased")]
    assert answer.data["keys_shredded"] == 1
    # A later erasure order for the same subject shredded nothing of its own.
    later = erase_command(subject)
    await commands.prepare(later)
    await commands.handle(later)
    answers = [e for e in await kernel.store.read_range(1, 10) if e.event_type.endswith("Erased")]
    assert [a.data["keys_shredded"] for a in answers] == [1, 0]


async def test_every_service_answers_one_command_under_an_id_of_its_own() -> None:
    """Every service answers the same command; consumers and the audit log keep one event per
    id, so answers sharing an id would hide each other."""
    command = erase_command(str(uuid.uuid4()))
    ids = set()
    for service in ("identity", "consent", "retention"):
        kernel, events = _kernel_and_events(service)
        await ErasureCommands(RecordingParticipant(), kernel.repository, events, VERIFIER).handle(
            command
        )
        [answer] = await kernel.store.read_range(1, 10)
        assert answer.event_id == answer_id(command, service)
        ids.add(answer.event_id)
    assert len(ids) == 3


async def test_an_invalid_command_erases_nothing_and_answers_nothing() -> None:
    kernel, events = _kernel_and_events()
    participant = RecordingParticipant()
    commands = ErasureCommands(participant, kernel.repository, events, VERIFIER)
    command = erase_command(str(uuid.uuid4()))
    await commands.handle(signed(command.model_copy(update={"subject_id": None, "data": {}})))
    assert participant.erased == []
    assert await kernel.store.last_seq() == 0


async def test_anonymize_answers_with_the_resource() -> None:
    kernel, events = _kernel_and_events()
    commands = ErasureCommands(RecordingParticipant(), kernel.repository, events, VERIFIER)
    project = str(uuid.uuid4())
    await commands.handle(anonymize_command("project", project))
    [answer] = await kernel.store.read_range(1, 10)
    assert answer.event_type == "svc.ResourceAnonymized"
    assert answer.data["resource_id"] == project
    assert answer.data["records_anonymized"] == {"project": 3}
    assert answer.resource.id == f"project:{project}"


def test_footprint_totals_are_sums_of_the_categories() -> None:
    footprint = Footprint.of(
        "svc",
        str(uuid.uuid4()),
        key_erased=False,
        records={"contact": 3, "usage": 1},
        readable={"contact": 2},
    )
    assert footprint.total_records == 4
    assert footprint.readable_personal_fields == 2
    assert footprint.categories["usage"].readable_personal_fields == 0


def test_well_formed_id_refuses_raw_path_values() -> None:
    ident = str(uuid.uuid4())
    assert well_formed_id(ident.upper()) == ident
    assert well_formed_id("../../etc") is None
    assert well_formed_id("a" * 300) is None
    assert well_formed_id(None) is None

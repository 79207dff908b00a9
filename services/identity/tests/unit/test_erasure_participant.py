"""identity's part of the erasure contract over the fakes: erase, hold, export, footprint."""

from __future__ import annotations

import uuid
from typing import Any

from mmgen.events.envelope import Actor
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.service_layer.accounts import Correction, Registration
from mmgen.runtime.contract import Footprint, SubjectExport
from mmgen.runtime.erasure import answer_id
from mmgen.runtime.testing import erase_command
from services.identity.tests.identity_kit import passphrase, stored_events, unique_email

EMAIL = "zephyrine.quillbottom@example.org"


async def person(identity: IdentityService) -> tuple[str, str]:
    email = unique_email("zq")
    user_id = await identity.accounts.register(
        Registration(
            email=email,
            password=passphrase(),
            name="Zephyrine Quillbottom",
            role="client",
            phone="+41 79 555 1234",
        )
    )
    await identity.accounts.correct(
        user_id, Correction({"name": "Zephyrine Q."}), Actor(id=user_id, role="client")
    )
    await identity.refresh_tokens.issue(user_id, "client")
    return user_id, email


async def answers(identity: IdentityService, subject_id: str) -> list[Any]:
    erased = await stored_events(identity, "identity.SubjectErased")
    return [e for e in erased if e.subject_id == subject_id]


async def test_erasure_shreds_the_key_deletes_the_records_and_answers_per_category(
    identity: IdentityService,
) -> None:
    user_id, email = await person(identity)
    command = erase_command(user_id)
    await identity.erasure_commands.handle(command)
    [answer] = await answers(identity, user_id)
    assert (
        answer.event_id == answer_id(command, "identity")
        and answer.causation_id == command.event_id
    )
    assert answer.schema_version == 2
    assert answer.data == {
        "request_id": command.data["request_id"],
        "subject_id": user_id,
        "keys_shredded": 1,
        # the account record and its email reservation; the refresh token; the verification
        # mail still waiting in the outbox (nothing sends it here), which holds the address
        "records_deleted": {"account": 2, "security": 1, "contact": 1},
        # the registration (three categories) and the name correction, now unreadable
        "records_anonymized": {"account": 1, "business": 1, "contact": 2},
        "categories_held": [],
    }
    assert await identity.account_records.get(user_id) is None
    footprint = await identity.erasure.footprint(user_id)
    assert footprint.key_erased and footprint.readable_personal_fields == 0
    export = await identity.erasure.export(user_id)
    assert export.erased and email not in export.model_dump_json()
    assert export.records["account"]["email"] == {"erased": True}
    # The address registers again, as a new subject.
    again = await identity.accounts.register(
        Registration(email=email, password=passphrase(), name="Someone", role="creator")
    )
    assert again != user_id


async def test_a_second_request_finds_nothing_left(identity: IdentityService) -> None:
    user_id, _ = await person(identity)
    await identity.erasure_commands.handle(erase_command(user_id))
    await identity.erasure_commands.handle(erase_command(user_id))
    _, second = await answers(identity, user_id)
    assert second.data["keys_shredded"] == 0
    assert second.data["records_deleted"] == {} and second.data["records_anonymized"] == {}


async def test_a_hold_keeps_the_key_and_closes_the_account(identity: IdentityService) -> None:
    user_id, _ = await person(identity)
    await identity.erasure_commands.handle(erase_command(user_id, ["contact", "payment"]))
    [answer] = await answers(identity, user_id)
    assert answer.data["keys_shredded"] == 0
    assert answer.data["categories_held"] == ["contact"]  # payment: identity holds none
    account = await identity.account_records.get(user_id)
    assert account is not None and account.status == "closed"
    store = identity.kernel.store
    [closed] = [e for e in await store.load(user_id) if e.event_type == "identity.AccountClosed"]
    assert closed.data == {"closed_by": "retention"} and closed.purpose == "legal_compliance"
    footprint = await identity.erasure.footprint(user_id)
    assert not footprint.key_erased
    assert footprint.categories["contact"].readable_personal_fields == 4  # email, name x2, phone


async def test_the_export_holds_everything_but_the_password_hash(
    identity: IdentityService,
) -> None:
    user_id, email = await person(identity)
    export = await identity.erasure.export(user_id)
    SubjectExport.model_validate(export.model_dump())
    assert export.records["account"] == {
        "user_id": user_id,
        "role": "client",
        "status": "active",
        "registered_by": "self",
        "email": email,
        "name": "Zephyrine Q.",
        "phone": "+41 79 555 1234",
        "business": None,
        "password": {"held": True, "kind": "argon2id hash", "exported": False},
    }
    assert export.records["read_models"] == {"account_record": True, "refresh_tokens": 1}
    registered, corrected = export.events
    assert registered.personal is not None
    assert registered.personal["name"] == "Zephyrine Quillbottom"  # as registered
    assert registered.personal["password_hash"] == {"held": True, "exported": False}
    assert corrected.personal == {"name": "Zephyrine Q."}
    assert "$argon2" not in export.model_dump_json()


async def test_footprint_and_export_of_an_unknown_subject(identity: IdentityService) -> None:
    nobody = str(uuid.uuid4())
    footprint = await identity.erasure.footprint(nobody)
    assert footprint == Footprint.of("identity", nobody, key_erased=False, records={}, readable={})
    export = await identity.erasure.export(nobody)
    assert export.records == {} and export.events == [] and not export.erased

"""Account use cases over the fakes: registration, sign-in, corrections, closing, staff reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mmgen.events.envelope import Actor
from mmgen.identity.adapters.accounts import PENDING, InMemoryAccountsReadModel, Reservation
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.domain.errors import (
    AccountNotActiveError,
    EmailTakenError,
    InvalidCredentialsError,
    PasswordRejectedError,
)
from mmgen.identity.domain.model import CLOSED
from mmgen.identity.service_layer.accounts import Correction, Registration
from services.identity.tests.identity_kit import passphrase, stored_events, unique_email

ADDRESS = "198.51.100.7"


def registration(**changes: Any) -> Registration:
    values: dict[str, Any] = {
        "email": unique_email(),
        "password": passphrase(),
        "name": "Ada Lovelace",
        "role": "client",
    }
    values.update(changes)
    return Registration(**values)


def records(identity: IdentityService) -> InMemoryAccountsReadModel:
    fake = identity.account_records
    assert isinstance(fake, InMemoryAccountsReadModel)
    return fake


async def test_registration_stores_one_sealed_event_and_an_active_account(
    identity: IdentityService,
) -> None:
    user_id = await identity.accounts.register(registration(email="Ada@Example.org "))
    [event] = await stored_events(identity)
    assert event.event_type == "identity.UserRegistered" and event.stream_version == 1
    assert event.pii is not None and event.pii.owner == f"subject:{user_id}"
    assert "ada@example.org" not in event.model_dump_json()
    account = await identity.account_records.get(user_id)
    assert account is not None and account.active and account.version == 1
    index = identity.accounts.blind_index("ada@example.org")
    assert account.email_index == index
    assert await identity.account_records.user_id_for_email(index) == user_id


async def test_an_email_is_taken_whatever_its_case(identity: IdentityService) -> None:
    email = unique_email()
    await identity.accounts.register(registration(email=email))
    before = await identity.kernel.store.last_seq()
    with pytest.raises(EmailTakenError):
        await identity.accounts.register(registration(email=email.upper()))
    assert await identity.kernel.store.last_seq() == before


async def test_a_refused_password_reserves_nothing(identity: IdentityService) -> None:
    with pytest.raises(PasswordRejectedError):
        await identity.accounts.register(registration(password="password1234567"))
    assert records(identity).emails == {} and await stored_events(identity) == []


async def test_a_stale_reservation_of_a_crashed_registration_is_taken_over(
    identity: IdentityService,
) -> None:
    email = unique_email()
    index = identity.accounts.blind_index(email)
    crashed = "3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11"  # reserved, never wrote its event
    records(identity).emails[index] = Reservation(
        crashed, PENDING, datetime.now(UTC) - timedelta(minutes=5)
    )
    user_id = await identity.accounts.register(registration(email=email))
    assert await identity.account_records.user_id_for_email(index) == user_id


async def test_a_fresh_reservation_is_a_registration_in_progress(
    identity: IdentityService,
) -> None:
    email = unique_email()
    index = identity.accounts.blind_index(email)
    records(identity).emails[index] = Reservation(
        "3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11", PENDING, datetime.now(UTC)
    )
    with pytest.raises(EmailTakenError):
        await identity.accounts.register(registration(email=email))


async def test_sign_in_accepts_the_password_and_refuses_everything_else(
    identity: IdentityService,
) -> None:
    reg = registration()
    user_id = await identity.accounts.register(reg)
    user = await identity.accounts.authenticate(reg.email, reg.password, ADDRESS)
    assert user.id == user_id and user.role == "client"
    with pytest.raises(InvalidCredentialsError):
        await identity.accounts.authenticate(reg.email, passphrase(), ADDRESS)
    with pytest.raises(InvalidCredentialsError):
        await identity.accounts.authenticate(unique_email(), reg.password, ADDRESS)


async def test_an_email_correction_moves_the_sign_in_to_the_new_address(
    identity: IdentityService,
) -> None:
    reg = registration()
    user_id = await identity.accounts.register(reg)
    new = unique_email("moved")
    actor = Actor(id=user_id, role="client")
    user = await identity.accounts.correct(user_id, Correction({"email": new}), actor)
    assert user.email == new
    await identity.accounts.authenticate(new, reg.password, ADDRESS)
    with pytest.raises(InvalidCredentialsError):
        await identity.accounts.authenticate(reg.email, reg.password, ADDRESS)
    await identity.accounts.register(registration(email=reg.email))  # the old one is free
    account = await identity.account_records.get(user_id)
    assert account is not None and account.version == 2


async def test_an_email_correction_to_a_taken_address_changes_nothing(
    identity: IdentityService,
) -> None:
    other = registration()
    await identity.accounts.register(other)
    user_id = await identity.accounts.register(registration())
    before = await identity.kernel.store.last_seq()
    with pytest.raises(EmailTakenError):
        await identity.accounts.correct(
            user_id, Correction({"email": other.email}), Actor(id=user_id, role="client")
        )
    assert await identity.kernel.store.last_seq() == before


async def test_closing_ends_sign_in_tokens_and_further_changes(identity: IdentityService) -> None:
    reg = registration()
    user_id = await identity.accounts.register(reg)
    refresh = await identity.refresh_tokens.issue(user_id, "client")
    actor = Actor(id=user_id, role="client")
    await identity.accounts.close(user_id, actor)
    account = await identity.account_records.get(user_id)
    assert account is not None and account.status == CLOSED
    assert await identity.verifier.denylist.is_denied(user_id)  # type: ignore[union-attr]
    with pytest.raises(InvalidCredentialsError):
        await identity.accounts.authenticate(reg.email, reg.password, ADDRESS)
    with pytest.raises(AccountNotActiveError):
        await identity.accounts.correct(user_id, Correction({"name": "Eve"}), actor)
    with pytest.raises(Exception, match="revoked"):
        await identity.refresh_tokens.rotate(refresh)
    types = [e.event_type for e in await stored_events(identity)]
    assert types == ["identity.UserRegistered", "identity.AccountClosed"]


async def test_a_staff_read_is_an_access_event_naming_the_fields(
    identity: IdentityService,
) -> None:
    user_id = await identity.accounts.register(registration(phone="+44 20 7946 0958"))
    staff = Actor(id="7d1e3c2b-0f4a-4b8e-9c6d-5a4b3c2d1e0f", role="staff")
    user = await identity.accounts.read_for_staff(user_id, staff, "support")
    assert user.phone == "+44 20 7946 0958"
    read = (await stored_events(identity))[-1]
    assert read.event_type == "identity.UserRead" and read.purpose == "support"
    assert sorted(read.data["fields"]) == ["email", "name", "phone"]
    assert read.subject_id == user_id and read.pii is None


async def test_the_bootstrap_admin_is_created_once(identity: IdentityService) -> None:
    email, password = unique_email("root"), passphrase()
    first = await identity.accounts.ensure_admin(email, password, "Root", source="bootstrap")
    assert first is not None
    assert await identity.accounts.ensure_admin(email, password, "Root", source="bootstrap") is None
    account = await identity.account_records.get(first)
    assert account is not None and account.role == "admin"

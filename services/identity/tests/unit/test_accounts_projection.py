"""The accounts projection over the fakes: idempotent, order-safe, and a rebuild from the store
gives the read model the request handlers built."""

from __future__ import annotations

from typing import Any

from mmgen.events.envelope import Actor
from mmgen.events.mapper import NewEvent
from mmgen.identity.adapters.accounts import InMemoryAccountsReadModel
from mmgen.identity.adapters.projection import AccountsProjection
from mmgen.identity.bootstrap import IdentityService
from mmgen.identity.domain.events import AccountClosed
from mmgen.identity.domain.model import ACTIVE, CLOSED
from mmgen.identity.service_layer.accounts import Correction, Registration
from mmgen.runtime.testing import erase_command, eventually
from services.identity.tests.identity_kit import passphrase, stored_events, unique_email


async def register(identity: IdentityService, **changes: Any) -> str:
    values: dict[str, Any] = {
        "email": unique_email(),
        "password": passphrase(),
        "name": "Ada",
        "role": "client",
    }
    values.update(changes)
    return await identity.accounts.register(Registration(**values))


def rebuilt(identity: IdentityService) -> tuple[InMemoryAccountsReadModel, AccountsProjection]:
    fresh = InMemoryAccountsReadModel()
    return fresh, AccountsProjection(fresh, identity.kernel.mapper, identity.accounts.blind_index)


def state(model: Any) -> tuple[Any, Any, Any]:
    return model.accounts, model.emails, model.created_at


async def history(identity: IdentityService) -> None:
    """Registrations, corrections, a close, an erasure, a held erasure, a re-used email."""
    kept = await register(identity)
    moved = await register(identity)
    old_email = unique_email("old")
    corrected = await register(identity, email=old_email)
    actor = Actor(id=corrected, role="client")
    await identity.accounts.correct(corrected, Correction({"email": unique_email()}), actor)
    await identity.accounts.correct(corrected, Correction({"name": "Augusta"}), actor)
    await register(identity, email=old_email)  # the freed address, someone else's now
    await identity.accounts.close(moved, Actor(id=moved, role="client"))
    erased = await register(identity, role="creator")
    await identity.erasure_commands.handle(erase_command(erased))
    held = await register(identity)
    await identity.erasure_commands.handle(erase_command(held, ["contact"]))
    assert kept


async def test_applying_every_event_again_changes_nothing(identity: IdentityService) -> None:
    await history(identity)
    live = identity.account_records
    assert isinstance(live, InMemoryAccountsReadModel)
    before = repr(state(live))
    for envelope in await stored_events(identity):
        await identity.projection.apply(envelope)
    assert repr(state(live)) == before


async def test_a_rebuild_from_the_store_is_the_read_model_of_the_handlers(
    identity: IdentityService,
) -> None:
    await history(identity)
    fresh, projection = rebuilt(identity)
    for envelope in await stored_events(identity):
        await projection.apply(envelope)
    live = identity.account_records
    assert isinstance(live, InMemoryAccountsReadModel)
    assert state(fresh) == state(live)
    statuses = sorted(a.status for a in fresh.accounts.values())
    # kept, corrected, the new holder of the old email: active; moved and held: closed.
    assert statuses == [ACTIVE, ACTIVE, ACTIVE, CLOSED, CLOSED]


async def test_an_old_event_applied_late_does_not_undo_a_newer_one(
    identity: IdentityService,
) -> None:
    user_id = await register(identity)
    actor = Actor(id=user_id, role="client")
    first, second = unique_email("first"), unique_email("second")
    await identity.accounts.correct(user_id, Correction({"email": first}), actor)
    await identity.accounts.correct(user_id, Correction({"email": second}), actor)
    for envelope in await stored_events(identity):  # the projector, behind the handlers
        await identity.projection.apply(envelope)
    blind = identity.accounts.blind_index
    assert await identity.account_records.user_id_for_email(blind(second)) == user_id
    assert await identity.account_records.user_id_for_email(blind(first)) is None


async def test_an_erased_account_never_comes_back(identity: IdentityService) -> None:
    user_id = await register(identity)
    await identity.erasure_commands.handle(erase_command(user_id))
    for envelope in await stored_events(identity):  # the registration, applied after the erasure
        await identity.projection.apply(envelope)
    assert await identity.account_records.get(user_id) is None
    assert await identity.account_records.count_subject(user_id) == 0


async def test_the_projector_applies_a_close_the_handler_never_applied(
    identity: IdentityService,
) -> None:
    """A crash right after `AccountClosed` was appended: the read model still says active
    until the runtime's projector reaches the event; then the account's tokens are refused."""
    user_id = await register(identity)
    await identity.kernel.repository.append(
        user_id, 1, [NewEvent(AccountClosed(), subject_id=user_id, actor=None)]
    )
    denylist = identity.verifier.denylist
    assert denylist is not None
    assert not await denylist.is_denied(user_id)

    async with identity.runtime.lifespan():

        async def closed() -> bool:
            account = await identity.account_records.get(user_id)
            return account is not None and account.status == CLOSED

        await eventually(closed, timeout=5)
    assert await denylist.is_denied(user_id)

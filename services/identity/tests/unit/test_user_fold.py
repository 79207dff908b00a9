"""The `User` aggregate folds its events, and an erased subject folds to erased markers."""

from __future__ import annotations

from mmgen.events.erased import ERASED, is_erased
from mmgen.identity.domain.events import (
    AccountClosed,
    EmailCorrected,
    EmailCorrectedPII,
    SubjectErased,
    UserRegistered,
    UserRegisteredPII,
)
from mmgen.identity.domain.model import User


def registered() -> User:
    user = User("3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11")
    user.when(
        UserRegistered(role="client"),
        UserRegisteredPII(email="a@example.org", name="Ada", password_hash="$argon2id$x"),
    )
    return user


def test_registration_and_correction() -> None:
    user = registered()
    user.when(EmailCorrected(), EmailCorrectedPII(email="b@example.org"))
    assert user.active and user.email == "b@example.org" and user.role == "client"


def test_closed_account_is_not_active() -> None:
    user = registered()
    user.when(AccountClosed(), None)
    assert not user.active and user.status == "closed"


def test_shredded_registration_folds_to_erased_markers() -> None:
    user = User("3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11")
    user.when(UserRegistered(role="creator"), ERASED)
    assert is_erased(user.email) and is_erased(user.password_hash)
    user.when(
        SubjectErased(
            request_id="r",
            subject_id=user.id,
            key_shredded=True,
            events_made_unreadable=1,
            read_models_deleted=2,
        ),
        None,
    )
    assert user.erased and not user.active

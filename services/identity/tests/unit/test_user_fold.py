"""The `User` aggregate folds its events, and an erased subject folds to erased markers."""

from __future__ import annotations

from mmgen.events.erased import ERASED, is_erased
from mmgen.identity.domain.events import (
    AccountClosed,
    EmailCorrected,
    EmailCorrectedPII,
    UserRegistered,
    UserRegisteredPII,
)
from mmgen.identity.domain.model import CLOSED, ERASED_STATUS, User
from mmgen.runtime.contract import SubjectErasedData

USER_ID = "3b8f0c1e-8d1a-4a7b-9a53-2f3c1a0b9d11"


def registered() -> User:
    user = User(USER_ID)
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
    assert not user.active and user.status == CLOSED


def test_a_shredded_registration_is_an_erased_account() -> None:
    user = User(USER_ID)
    user.when(UserRegistered(role="creator"), ERASED)
    assert is_erased(user.email) and is_erased(user.password_hash)
    assert user.erased and user.status == ERASED_STATUS and not user.active
    user.when(AccountClosed(), None)
    assert user.status == ERASED_STATUS  # closing does not make it less erased


def test_an_erasure_answer_in_the_stream_erases_or_closes() -> None:
    """Streams of accounts erased before the erasure contract hold its answer."""
    user = registered()
    user.when(SubjectErasedData(subject_id=USER_ID, keys_shredded=1), None)
    assert user.erased and not user.active
    held = registered()
    held.when(
        SubjectErasedData(subject_id=USER_ID, keys_shredded=0, categories_held=["contact"]), None
    )
    assert held.status == CLOSED and held.email == "a@example.org"

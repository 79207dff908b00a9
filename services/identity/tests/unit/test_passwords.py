"""The password policy (NIST SP 800-63B), email normalisation and the argon2id parameters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from mmgen.identity.adapters.hashing import BlindIndex, PasswordHashing, service_secret
from mmgen.identity.domain.emails import normalise_email
from mmgen.identity.domain.errors import EmailInvalidError, PasswordRejectedError
from mmgen.identity.domain.passwords import PasswordPolicy, common_passwords
from mmgen.identity.settings import IdentitySettings

POLICY = PasswordPolicy(min_length=15, max_length=256)
README = Path(__file__).parents[2] / "README.md"


def test_blocklist_is_shipped_and_large() -> None:
    listed = common_passwords()
    assert len(listed) > 19_000
    assert {"password", "123456", "qwerty", "iloveyou"} <= listed
    # The README states its size: keep it true.
    stated = f"{len(listed):,} common passwords"
    assert stated in " ".join(README.read_text(encoding="utf-8").split())


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",  # a passphrase with spaces
        "lowercase only but quite long",  # no composition rules
        "ÄÖÜ schöne grüße aus köln",  # unicode welcome
        "x" * 10 + "mq7#Lp2&zR",  # not a repetition as a whole
        "a" * 3 + "bcx9 long enough phrase",
    ],
)
def test_accepts_long_passphrases_without_composition_rules(password: str) -> None:
    assert POLICY.check(password) == password


def test_allows_at_least_64_characters() -> None:
    long = " ".join(f"the {n}th quick fox jumps over lazy dog {n * 7}" for n in range(6))
    assert len(long) > 200
    assert POLICY.check(long)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 15"),
        ("x" * 257, "at most 256"),
        ("yfdbufnjh10305070", "common"),  # a listed password as is
        ("passwordpassword", "repeated"),
        ("baseball1234567890", "common"),  # listed word with digits appended
        ("iloveyou!!!!!!!!!!", "common"),  # listed word with symbols appended
        ("abcabcabcabcabcabc", "repeated"),
        ("zzzzzzzzzzzzzzzzzz", "repeated"),
        ("abcdefghijklmnopq", "sequence"),
        ("98765432109876543", "sequence"),
        ("qwertyuiopasdfghj", "sequence"),
    ],
)
def test_refuses(password: str, reason: str) -> None:
    with pytest.raises(PasswordRejectedError) as caught:
        POLICY.check(password)
    assert reason in caught.value.reason


def test_refuses_passwords_made_of_context_words() -> None:
    with pytest.raises(PasswordRejectedError):
        POLICY.check("ada.lovelace2024!!", context=["ada.lovelace@example.org", "Ada Lovelace"])
    with pytest.raises(PasswordRejectedError):
        POLICY.check("mmgen multimedia 99", context=[])
    # The same password is fine for someone else.
    assert POLICY.check("ada.lovelace2024!!", context=["bob@example.org", "Bob"])


def test_nfkc_normalisation() -> None:
    # A full-width passphrase normalises to the ASCII one: both log in the same.
    assert (
        POLICY.check("\uff43\uff4f\uff52\uff52\uff45\uff43\uff54 horse battery")
        == "correct horse battery"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada.Lovelace@Example.ORG ", "ada.lovelace@example.org"),
        ("\uff21\uff24\uff21@example.org", "ada@example.org"),
    ],
)
def test_email_normalisation(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["not-an-email", "a@b", "two@@example.org", "sp ace@example.org", "a..b@example.org"]
)
def test_email_invalid(raw: str) -> None:
    with pytest.raises(EmailInvalidError):
        normalise_email(raw)


def test_blind_index_is_keyed_and_deterministic() -> None:
    one, other = BlindIndex(b"k" * 32), BlindIndex(b"j" * 32)
    assert one("a@example.org") == one("a@example.org")
    assert one("a@example.org") != other("a@example.org")
    assert "a@example.org" not in one("a@example.org")


def test_service_secret_depends_on_key_and_name() -> None:
    assert service_secret(b"k" * 32, "retention") != service_secret(b"k" * 32, "consent")
    assert service_secret(b"k" * 32, "retention") != service_secret(b"j" * 32, "retention")


def test_argon2id_at_owasp_minimum_by_default() -> None:
    settings = IdentitySettings(environment="test")
    hashing = PasswordHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    digest = asyncio.run(hashing.hash("correct horse battery staple"))
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert asyncio.run(hashing.verify(digest, "correct horse battery staple"))
    assert not asyncio.run(hashing.verify(digest, "correct horse battery stapler"))
    assert not asyncio.run(hashing.verify(None, "correct horse battery staple"))


def test_settings_refuse_weaker_argon2_and_short_floors() -> None:
    with pytest.raises(ValidationError):
        IdentitySettings(argon2_memory_kib=8192)
    with pytest.raises(ValidationError):
        IdentitySettings(argon2_time_cost=1)
    with pytest.raises(ValidationError):
        IdentitySettings(password_min_length=6)


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        IdentitySettings(environment="production")
    text = str(caught.value)
    for variable in (
        "IDENTITY_MASTER_KEY",
        "IDENTITY_BLIND_INDEX_KEY",
        "IDENTITY_SERVICE_CREDENTIALS_KEY",
    ):
        assert variable in text

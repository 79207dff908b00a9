"""Password policy after NIST SP 800-63B: a length floor, long passphrases, no composition rules.

What is refused: too short or too long (after NFKC normalisation, counted in characters),
passwords from the shipped list of the 20,000 most common ones (also with digits/symbols
appended, or repeated), one character repeated or a run of sequential characters, and
passwords made of context words (the service's name, the user's email or name).
What is never asked: mixtures of character classes, periodic changes, hints.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mmgen.identity.domain.errors import PasswordRejectedError

SERVICE_WORDS = ("mmgen", "multimediagen", "multimedia", "identity")
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped blocklist (lower-cased), loaded once per process."""
    raw = resources.files("mmgen.identity.domain").joinpath("data/common-passwords.txt.gz")
    text = gzip.decompress(raw.read_bytes()).decode("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def normalise_password(password: str) -> str:
    """NFKC, as NIST asks, so the same passphrase typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def _is_repetition(text: str) -> bool:
    """The whole text is one short unit repeated (`abcabcabc…`, `passwordpassword`)."""
    n = len(text)
    return any(n % size == 0 and text[:size] * (n // size) == text for size in range(1, n // 2 + 1))


def _is_sequence(text: str) -> bool:
    if len(text) < 4:
        return False
    for seq in _SEQUENCES:
        doubled = seq * 3
        if text in doubled or text in doubled[::-1]:
            return True
    return False


@dataclass(frozen=True)
class PasswordPolicy:
    """The rules; `check` raises `PasswordRejectedError` with a reason a user can act on."""

    min_length: int = 15
    max_length: int = 256
    #: None: the shipped list, read on the first check (so building a policy reads nothing).
    blocklist: frozenset[str] | None = None

    def check(self, password: str, context: Iterable[str] = ()) -> str:
        """The normalised password if acceptable; else `PasswordRejectedError`."""
        normalised = normalise_password(password)
        length = len(normalised)
        if length < self.min_length:
            raise PasswordRejectedError(f"use at least {self.min_length} characters")
        if length > self.max_length:
            raise PasswordRejectedError(f"use at most {self.max_length} characters")
        lowered = normalised.lower()
        compact = re.sub(r"\s+", "", lowered)
        core = re.sub(r"[\W\d_]+$", "", compact)  # "password2024!" → "password"
        blocklist = common_passwords() if self.blocklist is None else self.blocklist
        if compact in blocklist or (core and core in blocklist):
            raise PasswordRejectedError("this password is too common; choose another")
        if _is_repetition(compact):
            raise PasswordRejectedError("repeated characters or words are easy to guess")
        if _is_sequence(compact):
            raise PasswordRejectedError("sequences like 'abcd…' or '1234…' are easy to guess")
        words = [*SERVICE_WORDS, *_context_words(context)]
        remainder = compact
        for word in sorted(set(words), key=len, reverse=True):
            if len(word) >= 3:
                remainder = remainder.replace(word, "")
        if remainder != compact and len(re.sub(r"[\W\d_]", "", remainder)) < 4:
            raise PasswordRejectedError("the password is made of your name, email or our name")
        return normalised


def _context_words(context: Iterable[str]) -> list[str]:
    words: list[str] = []
    for value in context:
        lowered = unicodedata.normalize("NFKC", value).lower()
        local = lowered.split("@", 1)[0]
        words.append(re.sub(r"\s+", "", lowered))
        words.extend(part for part in re.split(r"[\W_]+", local) if part)
        words.extend(part for part in re.split(r"[\W_]+", lowered) if part)
    return words

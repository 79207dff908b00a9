"""Email normalisation: one canonical form per mailbox, so uniqueness cannot be dodged by case."""

from __future__ import annotations

import re
import unicodedata

from mmgen.identity.domain.errors import EmailInvalidError

MAX_EMAIL_LENGTH = 254
# Deliberately permissive (RFC 5321 allows much); it rules out what cannot be a mailbox.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+$")


def normalise_email(raw: str) -> str:
    """NFKC, trimmed, lower-cased; raises `EmailInvalidError` for what is not an address.

    The whole address is lower-cased: local parts are case-sensitive in theory but not at
    any provider our users have, and two accounts differing only by case are a takeover risk.
    """
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email) or ".." in email:
        raise EmailInvalidError("not a valid email address")
    return email

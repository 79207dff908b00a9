"""Time-based one-time passwords (RFC 6238 on RFC 4226's HOTP) and recovery codes. No I/O.

The parameters are the ones every authenticator app understands without asking: HMAC-SHA-1,
6 digits, a 30-second step, and codes of the step before and after accepted for clock drift
(RFC 6238 §5.2). That a code is used once is the caller's business (`matching_steps` gives the
steps a code could be; the service claims one atomically). `Authenticator` is the other side,
for scripts and tests that sign in with a code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
#: Steps accepted on either side of the current one (clock drift and typing time).
DRIFT_STEPS = 1
#: `Authenticator` gives a code of the previous step only while this much of the current one
#: is left, so the code is still accepted when the request arrives on a loaded machine.
PREVIOUS_STEP_MARGIN_SECONDS = 10.0
#: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends for a shared secret.
SECRET_BYTES = 20
RECOVERY_CODES = 10
#: Recovery codes: 10 characters of an alphabet without look-alikes (about 50 bits each).
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10


def hotp(secret: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC of the 8-byte counter, dynamic truncation, `digits` decimals."""
    mac = hmac.new(secret, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def step_at(unix_time: float) -> int:
    """The RFC 6238 time step `T = floor((t - T0) / X)` with T0 = 0, X = 30 s."""
    return int(unix_time // STEP_SECONDS)


def totp(secret: bytes, unix_time: float, digits: int = DIGITS, digest: str = "sha1") -> str:
    """The code valid at `unix_time`."""
    return hotp(secret, step_at(unix_time), digits, digest)


def matching_steps(secret: bytes, code: str, unix_time: float) -> Iterator[int]:
    """The steps within the drift window whose code is `code` (compared in constant time)."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return
    now = step_at(unix_time)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            yield step


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_text(secret: bytes) -> str:
    """The secret as authenticator apps take it: base32 without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_text(text: str) -> bytes:
    cleaned = text.strip().replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI of Google Authenticator's key-uri format (QR codes)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": secret_text(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Fresh one-use recovery codes, shown once as `xxxxx-xxxxx`."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def recovery_code_hash(code: str) -> str:
    """SHA-256 of the normalised code: the codes are random (about 50 bits), so a fast hash is
    enough, and the hashes are sealed with the subject's other personal data anyway."""
    return hashlib.sha256(normalise_recovery_code(code).encode("ascii", "replace")).hexdigest()


class Authenticator:
    """What an authenticator app gives, for scripts and tests that sign in as someone with
    TOTP: a code of a step not used before (the service refuses a code twice) — the current
    step, else the next, else the previous (while enough of the current step is left for it to
    arrive in time); with none left, it waits for a fresh step.
    `used` carries the steps used earlier (a script keeps them between runs)."""

    def __init__(self, secret: str, used: Iterable[int] = ()) -> None:
        self.secret = secret
        self.key = secret_from_text(secret)
        self.used: set[int] = set(used)

    def code(self, clock: Callable[[], float] = time.time) -> str:
        while True:
            moment = clock()
            now = step_at(moment)
            # The previous step is accepted only until the current one ends: near that end a
            # code of it would arrive expired (seen as every parallel use refused at once).
            previous_lasts = (now + 1) * STEP_SECONDS - moment >= PREVIOUS_STEP_MARGIN_SECONDS
            candidates = (now, now + 1, now - 1) if previous_lasts else (now, now + 1)
            for step in candidates:
                if step not in self.used:
                    self.used = {s for s in self.used if s >= now - DRIFT_STEPS} | {step}
                    return hotp(self.key, step)
            time.sleep(max(0.05, (now + 1) * STEP_SECONDS - clock()))

    # The identity test kit calls it like an iterator.
    next = code

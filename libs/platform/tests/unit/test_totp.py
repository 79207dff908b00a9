"""TOTP (RFC 6238) against its Appendix B test vectors, and the code window's rules."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

import pytest

from mmgen.platform import totp

#: RFC 6238 Appendix B, the SHA-1 rows: the seed is the ASCII string "12345678901234567890".
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
SEED = b"12345678901234567890"


@pytest.mark.parametrize(("unix_time", "expected"), RFC6238_SHA1)
def test_the_rfc_6238_sha1_vectors(unix_time: int, expected: str) -> None:
    assert totp.totp(SEED, unix_time, digits=8) == expected
    # Six digits (what we use) are the last six of the same truncation.
    assert totp.totp(SEED, unix_time) == expected[-6:]


def test_a_code_matches_its_step_and_the_steps_beside_it_only() -> None:
    now = 1_700_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        code = totp.hotp(SEED, step + offset)
        assert list(totp.matching_steps(SEED, code, now)) == [step + offset]
    for offset in (-2, 2, 10):
        code = totp.hotp(SEED, step + offset)
        assert list(totp.matching_steps(SEED, code, now)) == []


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16", " 123456"]
)
def test_malformed_codes_match_nothing(code: str) -> None:
    assert list(totp.matching_steps(SEED, code, 1_700_000_000)) == []


def test_secrets_round_trip_through_base32_and_the_otpauth_uri() -> None:
    secret = totp.new_secret()
    assert len(secret) == 20
    text = totp.secret_text(secret)
    assert totp.secret_from_text(text) == secret
    assert totp.secret_from_text(text.lower()) == secret
    uri = urlparse(totp.otpauth_uri(secret, "ada@example.org", "Multimedia Gen"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [text]
    assert query["algorithm"] == ["SHA1"] and query["digits"] == ["6"] and query["period"] == ["30"]
    assert query["issuer"] == ["Multimedia Gen"]


def test_recovery_codes_are_ten_distinct_and_hash_the_same_however_typed() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    code = codes[0]
    variants = [code, code.upper(), code.replace("-", ""), f"  {code} "]
    assert {totp.recovery_code_hash(v) for v in variants} == {totp.recovery_code_hash(code)}
    assert totp.recovery_code_hash(codes[1]) != totp.recovery_code_hash(code)


def clock_of(*moments: float) -> Callable[[], float]:
    """A clock giving `moments` in turn, then the last one for ever."""
    remaining = list(moments)
    return lambda: remaining.pop(0) if len(remaining) > 1 else remaining[0]


def test_the_authenticator_gives_the_current_then_the_next_then_the_previous_step() -> None:
    app = totp.Authenticator(totp.secret_text(totp.new_secret()))
    at = 30 * 1000 + 5.0  # early in step 1000: the previous step still lasts 25 s
    assert [app.code(clock_of(at)) for _ in range(3)] == [
        totp.hotp(app.key, step) for step in (1000, 1001, 999)
    ]


def test_the_authenticator_gives_no_previous_step_about_to_expire() -> None:
    """Late in a step, a code of the previous one would arrive expired: it waits for a fresh
    step instead (every parallel use of such a code was refused once)."""
    app = totp.Authenticator(totp.secret_text(totp.new_secret()), used=(1000, 1001))
    late = 30 * 1000 + 30 - totp.PREVIOUS_STEP_MARGIN_SECONDS + 1
    code = app.code(clock_of(late, 30 * 1001 + 0.5, 30 * 1001 + 0.5))
    assert code == totp.hotp(app.key, 1002)
    assert list(totp.matching_steps(app.key, code, 30 * 1001 + 1)) == [1002]

"""TOTP (RFC 6238) against its Appendix B test vectors, and the code window's rules."""

from __future__ import annotations

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

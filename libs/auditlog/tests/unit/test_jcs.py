"""RFC 8785 canonicalisation against the cyberphone vectors and the ES6 number test file."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmgen.auditlog.errors import CanonicalizationError
from mmgen.auditlog.jcs import MAX_SAFE_INTEGER, canonicalize, serialize_number

JCS = Path(__file__).resolve().parent.parent / "vectors" / "jcs"
CYBERPHONE = JCS / "cyberphone-testdata"
NAMES = sorted(p.stem for p in (CYBERPHONE / "input").glob("*.json"))


def test_all_six_cyberphone_cases_present() -> None:
    assert NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_cyberphone_input_to_output(name: str) -> None:
    value = json.loads((CYBERPHONE / "input" / f"{name}.json").read_text(encoding="utf-8"))
    got = canonicalize(value)
    assert got == (CYBERPHONE / "output" / f"{name}.json").read_bytes()
    hex_text = (CYBERPHONE / "outhex" / f"{name}.txt").read_text()
    assert got == bytes.fromhex("".join(hex_text.split()))


def test_es6_number_file_is_the_authentic_upstream_prefix() -> None:
    data = (JCS / "es6_numbers_first1000.txt").read_bytes()
    assert len(data) == 37967
    digest = hashlib.sha256(data).hexdigest()
    assert digest == "be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687"


def test_es6_number_serialisation_first_1000_lines() -> None:
    lines = (JCS / "es6_numbers_first1000.txt").read_text().splitlines()
    assert len(lines) == 1000
    for line in lines:
        bits, expected = line.split(",")
        value = struct.unpack(">d", bytes.fromhex(bits.rjust(16, "0")))[0]
        assert serialize_number(value) == expected, line
        assert canonicalize([value]) == f"[{expected}]".encode()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_and_are_shortest(value: float) -> None:
    text = serialize_number(value)
    assert float(text) == value
    assert "E" not in text
    assert not text.startswith("+")
    if value == 0:
        assert text == "0"


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.text()
        | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
        max_leaves=20,
    )
)
def test_canonical_form_is_a_fixed_point_and_valid_json(value: object) -> None:
    once = canonicalize(value)
    # JSON numbers are doubles in JCS: big integral doubles read back as floats.
    again = json.loads(once, parse_int=lambda s: int(s) if len(s) < 16 else float(s))
    assert canonicalize(again) == once


def test_members_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, which sorts before U+E000; code-point order is opposite.
    got = canonicalize({"\ue000": 1, "\U0001f600": 2, "a": 3})
    assert got == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_string_escaping() -> None:
    assert canonicalize('\u0000\u001f\u007f\u2028"\\/\b\f\n\r\t') == (
        b'"\\u0000\\u001f\x7f\xe2\x80\xa8\\"\\\\/\\b\\f\\n\\r\\t"'
    )


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        "\ud800",
        {1: "x"},
        b"bytes",
        {"a": object()},
    ],
)
def test_values_without_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


def test_minus_zero_and_safe_integers() -> None:
    assert canonicalize([-0.0, 0, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1e21, 1e-7]) == (
        b"[0,0,9007199254740991,-9007199254740991,1e+21,1e-7]"
    )

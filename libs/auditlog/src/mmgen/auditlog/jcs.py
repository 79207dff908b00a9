"""RFC 8785 JSON Canonicalization Scheme (JCS): the byte form every audit hash is computed over.

Written here rather than imported so that the offline verifier has one small, auditable
implementation with no dependency beyond the standard library. Checked against the
cyberphone reference vectors and the ES6 number serialisation test file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from .errors import CanonicalizationError

__all__ = ["MAX_SAFE_INTEGER", "canonicalize", "serialize_number"]

#: Largest integer a JSON number can carry without loss in every I-JSON (RFC 7493) parser.
MAX_SAFE_INTEGER = 2**53 - 1

_encode_string = json.encoder.encode_basestring
# ``encode_basestring`` (ensure_ascii=False) escapes exactly what ES6 JSON.stringify escapes:
# '"', '\\', \b \f \n \r \t as two-character escapes and other C0 controls as \u00xx
# (lowercase hex); everything else, including U+007F and non-ASCII, is emitted literally.


def serialize_number(value: float | int) -> str:
    """Serialise a number as ES6 ``Number.prototype.toString`` does (RFC 8785 §3.2.2.3).

    Integers must lie in the I-JSON safe range: larger ones have no exact JSON number form
    that every verifier reads back identically, so the audit format carries them as strings.
    """
    if isinstance(value, bool):
        raise CanonicalizationError("a boolean is not a number")
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return str(value)
        raise CanonicalizationError(f"integer {value} is outside the I-JSON safe range")
    if not isinstance(value, float):
        raise CanonicalizationError(f"not a number: {type(value).__name__}")
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError("NaN and Infinity have no JSON form")
    if value == 0.0:
        return "0"  # also -0
    # repr() yields the shortest digit string that round-trips (round-half-even ties),
    # which is the digit string ES6 requires; only the layout differs.
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    stripped = digits.lstrip("0")
    # n: position of the decimal point relative to the first significant digit.
    n = len(int_part) + exponent - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits + "e" + exp if k == 1 else digits[0] + "." + digits[1:] + "e" + exp
    return sign + out


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _emit(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int | float):
        out.append(serialize_number(value))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object member name is not a string: {key!r}")
        out.append("{")
        first = True
        # RFC 8785 §3.2.3: members sorted by their names as arrays of UTF-16 code units.
        for key in sorted(value, key=_utf16_key):
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(key))
            out.append(":")
            _emit(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, out)
        out.append("]")
    else:
        raise CanonicalizationError(f"no JSON form for {type(value).__name__}")


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible Python value."""
    out: list[str] = []
    _emit(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogate: not a Unicode scalar value
        raise CanonicalizationError("string contains a lone surrogate") from exc

"""Text normalisation shared by validation and search: accent- and case-folding, words, keywords.

`fold` is NFKD decomposition with the combining marks dropped, then Unicode case-folding, so
"Élodie", "ELODIE" and "élodie" are one word, and compatibility forms (ligatures, full-width
letters) match their plain spelling. Words are runs of letters and digits of the folded text.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
#: Control characters refused in one-line fields (tab and newline included).
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Control characters refused in multi-line fields (newline allowed).
_CONTROL_TEXT = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def fold(text: str) -> str:
    """Accent- and case-folded text (NFKD, combining marks removed, casefold)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Case-folding can produce new combinable sequences ("ẞ" -> "ss" is fine, but some
    # letters fold to a base plus a mark): decompose once more and drop marks again.
    folded = unicodedata.normalize("NFKD", stripped.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The folded words of `text`, in order (letters and digits; everything else separates)."""
    return _WORD.findall(fold(text))


def keyword(text: str) -> str:
    """One normalised key for a short value (a skill, a city): its folded words, space-joined."""
    return " ".join(words(text))


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """True when `text` holds characters a profile field refuses (newlines only where allowed)."""
    pattern = _CONTROL_TEXT if multiline else _CONTROL_LINE
    return pattern.search(text.replace("\r\n", "\n")) is not None

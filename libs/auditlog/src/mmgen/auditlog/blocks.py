"""Export lines checked a block at a time: the offline verifier's fast path.

A block is whole lines of a JSON Lines export, as bytes. `check_block` takes, from the block's
start, every line that is the canonical text of an entry (`entry.canonical_line_parts`'s rules)
whose hash is its recomputed hash and which chains to the line before (`seq` one more,
`prev_hash` the line before's hash). It stops at the first line that is not all that, and
returns what it took: how many entries, the first one's `seq` and `prev_hash` (the caller
joins them to what it has verified), the last one's hash, and the RFC 9162 subtrees covering
their leaves, cut at the tree sizes where the caller needs a root. The caller verifies the
rest of the block line by line (`LogVerifier.feed_line`), whose exact path names a failure.

Two tiers, the same checks:
- a block of ASCII text with no backslash and no control character but the line feeds is
  matched with one pattern over the whole block (`_ASCII_LINE`, on bytes, without decoding or
  splitting it): there a string member cannot hold an escape or a control character, so a
  string is any run of 1..256 characters other than `"`, and the two hashes any 64 characters
  (the stated hash must equal the recomputed lowercase hex digest; `prev_hash` must equal the
  line before's hash or, for the first line, the hash the caller has verified). A match that
  ran over a line feed is caught by counting them: then the block takes the second tier;
- any other block (non-ASCII text, an escape) is decoded and checked line by line with
  `canonical_line_parts`, the pattern the sequential verifier uses.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from binascii import hexlify
from collections.abc import Sequence
from dataclasses import dataclass, field

from .entry import ACTIONS, MAX_CATEGORIES, _valid_date, canonical_line_parts
from .merkle import subtrees_of_range

__all__ = ["BlockResult", "check_block"]

_S = rb'"[^"]{1,256}"'
_OPT = rb"(?:null|" + _S + rb")"
_TS = (
    rb'"([0-9]{4}-[0-9]{2}-[0-9]{2})'
    rb'T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z"'
)
#: Up to 15 digits: always below 2**53 - 1 (longer numbers take the second tier).
_UINT15 = rb"(?:0|[1-9][0-9]{0,14})"
_ANY64 = rb'"((?s:.{64}))"'
_ASCII_LINE = re.compile(
    rb'\{"action":"(?:' + "|".join(sorted(ACTIONS)).encode() + rb')"'
    rb',"actor_id":' + _OPT + rb',"actor_role":' + _OPT +
    rb',"categories":\[((?:' + _S + rb"(?:," + _S + rb"){0,%d})?)\]" % (MAX_CATEGORIES - 1) +
    rb',"event_id":' + _S + rb',"event_type":' + _S +
    rb'(,"hash":' + _ANY64 + rb")"
    rb',"occurred_at":' + _TS + rb',"prev_hash":' + _ANY64 + rb',"producer":' + _S +
    rb',"producer_seq":' + _UINT15 + rb',"purpose":' + _OPT + rb',"recorded_at":' + _TS +
    rb',"resource":(?:null|\{"id":' + _S + rb',"type":' + _S + rb"\})"
    rb',"seq":(' + _UINT15 + rb'),"subject_id":' + _OPT + rb"\}\n"
)  # fmt: skip
#: Every byte but the ones the first tier cannot take (a control character other than the
#: line feed, a backslash): `translate(None, _PLAIN)` leaves exactly those.
_PLAIN = bytes(b for b in range(256) if not (b < 0x20 and b != 0x0A) and b != 0x5C)
#: Dates (`2026-11-01`) and category lists (`"contact","project"`) already found valid; the
#: two forms cannot be mistaken for each other (a list's text starts with a quote).
_KNOWN: set[bytes] = set()
_MAX_KNOWN = 4096
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What `check_block` took: `count` entries from `first_seq` (whose `prev_hash` is
    `first_prev`, as written), the last one's hash, the subtrees `(level, hash)` covering their
    leaves left to right, and `stop`: the byte offset of the first line not taken (None: every
    line was taken)."""

    count: int
    first_seq: int = 0
    first_prev: str = ""
    last_hash: bytes = b""
    subtrees: tuple[tuple[int, bytes], ...] = ()
    stop: int | None = None


@dataclass(slots=True)
class _Run:
    """The entries taken so far: the chain's last link and the leaf hashes."""

    count: int = 0
    first_seq: int = 0
    first_prev: str = ""
    seq: int = -1
    prev_hex: str = ""
    prev_raw: bytes = b""
    leaves: list[bytes] = field(default_factory=list)


def _remember(text: bytes) -> bool:
    if len(_KNOWN) >= _MAX_KNOWN:
        _KNOWN.clear()
    _KNOWN.add(text)
    return True


def _valid_ascii_date(text: bytes) -> bool:
    """`YYYY-MM-DD` is a real date (remembered: an export holds few distinct days)."""
    return _valid_date(text.decode("ascii")) and _remember(text)


def _ordered_categories(text: bytes) -> bool:
    """The categories' text (`"a","b"`, as matched) lists them distinct and in ascending
    order (remembered: an export holds few distinct lists)."""
    if b'","' in text:
        items = text[1:-1].split(b'","')
        if any(a >= b for a, b in itertools.pairwise(items)):
            return False
    return _remember(text)


def _ascii_tier(data: bytes, run: _Run) -> int:
    """Take canonical lines from the block's start (first tier); the offset where it stopped."""
    sha256, append, known = _sha256, run.leaves.append, _KNOWN
    position = count = first_seq = 0
    seq, prev_stated, prev_raw, first_prev = -1, b"", b"", b""
    for match in _ASCII_LINE.finditer(data):
        start, end = match.span()
        if start != position:
            break
        categories, _, stated, occurred, prev, recorded, seq_text = match.groups()
        if count:
            if prev != prev_stated or int(seq_text) != seq + 1:
                break
        else:
            try:
                prev_raw = bytes.fromhex(prev.decode("ascii"))
            except ValueError:
                break
            first_seq, first_prev = int(seq_text), prev
            seq = first_seq - 1
        if categories not in known and not _ordered_categories(categories):
            break
        if (occurred not in known and not _valid_ascii_date(occurred)) or (
            recorded not in known and not _valid_ascii_date(recorded)
        ):
            break
        cut, resume = match.span(2)
        entry = data[start:cut] + data[resume : end - 1]
        raw = sha256(prev_raw + entry).digest()
        if hexlify(raw) != stated:
            break
        append(sha256(b"\x00" + entry).digest())
        count, seq, prev_stated, prev_raw, position = count + 1, seq + 1, stated, raw, end
    if not count:
        return 0
    if data.count(b"\n", 0, position) != count:  # a string ran over a line feed
        del run.leaves[:]
        return 0
    run.count, run.first_seq, run.first_prev = count, first_seq, first_prev.decode("ascii")
    run.seq, run.prev_hex, run.prev_raw = seq, prev_stated.decode("ascii"), prev_raw
    return position


def _line_tier(data: bytes, at: int, run: _Run) -> int | None:
    """Take canonical lines from `data[at:]` one by one (second tier); the offset of the first
    line not taken, None when every line was."""
    try:
        text = data[at:].decode("utf-8")
    except UnicodeDecodeError:
        return at
    sha256 = _sha256
    position = 0
    for line in text.split("\n"):
        here, position = position, position + len(line) + 1
        if not line:
            if position > len(text):
                break  # the end of the block
            return at + len(text[:here].encode("utf-8"))
        parts = canonical_line_parts(line)
        if (
            parts is not None
            and run.count
            and (parts[2] != run.seq + 1 or parts[3] != run.prev_hex)
        ):
            parts = None
        if parts is not None:
            entry, stated, seq, prev = parts
            prev_raw = run.prev_raw if run.count else bytes.fromhex(prev)
            raw = sha256(prev_raw + entry).digest()
            if raw.hex() == stated:
                if not run.count:
                    run.first_seq, run.first_prev = seq, prev
                run.leaves.append(sha256(b"\x00" + entry).digest())
                run.count += 1
                run.seq, run.prev_hex, run.prev_raw = seq, stated, raw
                continue
        return at + len(text[:here].encode("utf-8"))
    return None


def check_block(data: bytes, due: Sequence[int] = ()) -> BlockResult:
    """Take the canonical, chained entry lines from the start of `data` (whole lines; the last
    may lack its line feed). `due`: tree sizes where the caller needs a root, so no subtree
    returned spans one of them."""
    run = _Run()
    at = 0
    if data.isascii() and not data.translate(None, _PLAIN):
        at = _ascii_tier(data, run)
    stop = _line_tier(data, at, run) if at < len(data) else None
    if not run.count:
        return BlockResult(0, stop=stop)
    return BlockResult(
        run.count,
        run.first_seq,
        run.first_prev,
        run.prev_raw,
        _subtrees(run.first_seq, run.leaves, due),
        stop,
    )


def _subtrees(first: int, leaves: list[bytes], due: Sequence[int]) -> tuple[tuple[int, bytes], ...]:
    """The subtrees over leaves `first..`, cut at every due size inside the range."""
    out: list[tuple[int, bytes]] = []
    start, taken = first, 0
    for size in sorted(due):
        if first < size < first + len(leaves):
            out += subtrees_of_range(start, leaves[taken : size - first])
            start, taken = size, size - first
    out += subtrees_of_range(start, leaves[taken:])
    return tuple(out)

"""Offline verification of a large export on every core, with the sequential verdict.

The export is cut into spans at line boundaries; worker processes check each span's lines
independently (`check_span`: each line the canonical text of an entry, each entry's hash
recomputed, each `seq` one more than the last and each `prev_hash` the last entry's hash) and
return the spans' leaf hashes. The parent, in file order, joins each span to what it has
verified (its first `seq` and `prev_hash` must continue the chain) and folds the leaves into
the Merkle frontier (`LogVerifier.feed_verified`: checkpoint root, saved-head roots).

On any doubt — a line a worker would not take, a span that does not join, bytes that do not
decode — the parent verifies the rest of the file itself, line by line, from the first line
not yet verified (`LogVerifier.feed_line`, whose exact path names the failure). So the verdict
(`valid`, `checked`, `first_bad_seq`, `code`) is the one the sequential verifier gives; only
how fast a valid export is checked changes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import Checkpoint
from .entry import canonical_line_parts
from .merkle import Frontier
from .verify import LogVerifier, export_lines, feed_all

__all__ = ["SpanResult", "check_span", "split_spans", "verify_export_file"]

#: Exports smaller than this are verified in this process (workers cost a start-up).
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
#: Bytes per span: progress moves a span at a time, a worker holds one span in memory.
SPAN_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SpanResult:
    """What a worker verified of one span: `count` entries from `first_seq` (linked to
    `first_prev`), their leaf hashes, the last one's hash; `doubt`: the byte offset of the first
    line it did not take (None: it took the whole span)."""

    count: int
    first_seq: int
    first_prev: str
    last_hash: bytes
    leaves: bytes
    doubt: int | None


def split_spans(path: Path, span_bytes: int = SPAN_BYTES) -> list[tuple[int, int]]:
    """`(start, end)` byte ranges covering the file, each ending just after a newline (the
    last at the file's end)."""
    size = path.stat().st_size
    spans: list[tuple[int, int]] = []
    start = 0
    with path.open("rb") as stream:
        while start < size:
            stream.seek(min(size, start + span_bytes))
            stream.readline()
            end = min(size, stream.tell()) if start + span_bytes < size else size
            spans.append((start, end))
            start = end
    return spans


def check_span(path: str, start: int, end: int) -> SpanResult:
    """Check the lines of `path[start:end]` as `LogVerifier.feed_line`'s fast path does,
    taking the first entry's `seq` and `prev_hash` as given (the parent checks the join)."""
    with open(path, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    if start == 0 and data.startswith(_BOM):
        data, start = data[len(_BOM) :], start + len(_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return SpanResult(0, 0, "", b"", b"", start)
    sha256 = hashlib.sha256
    leaves = bytearray()
    count, first_seq, first_prev = 0, 0, ""
    seq, prev_hex, prev_raw = -1, "", b""
    position = 0
    for line in text.split("\n"):
        here, position = position, position + len(line) + 1
        if not line or line.isspace():
            continue
        parts = canonical_line_parts(line)
        if parts is not None and count and (parts[2] != seq + 1 or parts[3] != prev_hex):
            parts = None
        if parts is not None:
            entry_bytes, stated, entry_seq, entry_prev = parts
            raw = sha256((prev_raw if count else bytes.fromhex(entry_prev)) + entry_bytes).digest()
            if raw.hex() == stated:
                if not count:
                    first_seq, first_prev = entry_seq, entry_prev
                leaves += sha256(b"\x00" + entry_bytes).digest()
                count += 1
                seq, prev_hex, prev_raw = entry_seq, stated, raw
                continue
        doubt = start + len(text[:here].encode("utf-8"))
        return SpanResult(count, first_seq, first_prev, prev_raw, bytes(leaves), doubt)
    return SpanResult(count, first_seq, first_prev, prev_raw, bytes(leaves), None)


def verify_export_file(
    path: Path,
    *,
    checkpoint: Checkpoint | None = None,
    roots_at: Iterable[int] = (),
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    span_bytes: int = SPAN_BYTES,
    min_parallel_bytes: int = PARALLEL_MIN_BYTES,
) -> LogVerifier:
    """Verify an export file against a verified checkpoint; returns the verifier (its
    `result()`, `root_at(size)`). `workers`: processes (default: the CPUs); 1, or a file
    below `min_parallel_bytes`, is verified here, line by line."""
    verifier = LogVerifier(frontier=Frontier(0), checkpoint=checkpoint, roots_at=roots_at)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or path.stat().st_size < min_parallel_bytes:
        with path.open("rb") as stream:
            feed_all(verifier, export_lines(stream), progress=progress)
        return verifier
    spans = split_spans(path, span_bytes)
    resume: int | None = None
    # Spawned, not forked: the caller may run threads (a progress bar) a fork would copy.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(count, len(spans)), mp_context=context) as pool:
        results = pool.map(check_span, [str(path)] * len(spans), *zip(*spans, strict=True))
        for (start, _), span in zip(spans, results, strict=True):
            if span.count and (
                span.first_seq != verifier.next_seq or span.first_prev != verifier.prev_hash.hex()
            ):
                resume = start
                break
            if span.count:
                if not verifier.feed_verified(span.leaves, span.last_hash):
                    break
                if progress is not None:
                    progress(span.count)
            if span.doubt is not None:
                resume = span.doubt
                break
        pool.shutdown(cancel_futures=True)
    if resume is not None and verifier.ok:
        with path.open("rb") as stream:
            stream.seek(resume)
            feed_all(verifier, export_lines(stream, at_start=resume == 0), progress=progress)
    return verifier

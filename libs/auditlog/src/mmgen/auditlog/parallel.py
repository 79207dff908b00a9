"""Offline verification of a large export on every core, with the sequential verdict.

The export is cut into spans at line boundaries; worker processes check each span
(`check_span`, which is `blocks.check_block`: each line the canonical text of an entry, each
entry's hash recomputed, each `seq` one more than the last and each `prev_hash` the last
entry's hash) and return the RFC 9162 subtrees over the spans' leaves. The parent, in file
order, joins each span to what it has verified (its first `seq` and `prev_hash` must continue
the chain) and folds the subtrees into the Merkle frontier (`LogVerifier.feed_subtrees`:
checkpoint root, saved-head roots, which the workers do not cut through).

On any doubt — a line a worker would not take, a span that does not join, bytes that do not
decode — the parent verifies that span's remaining lines itself, line by line
(`LogVerifier.feed_line`, whose exact path names the failure), then goes on with the next
span. So the verdict (`valid`, `checked`, `first_bad_seq`, `code`) is the one the sequential
verifier gives; only how fast a valid export is checked changes. With one worker the spans
are checked the same way, in this process.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from .blocks import BlockResult, check_block
from .checkpoint import Checkpoint
from .merkle import Frontier
from .verify import LogVerifier, export_lines, feed_all, take_block

__all__ = ["check_span", "split_spans", "verify_export_file"]

#: Exports smaller than this are verified in this process (workers cost a start-up).
PARALLEL_MIN_BYTES = 32 * 1024 * 1024
#: Bytes per span: progress moves a span at a time, a worker holds one span in memory.
SPAN_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


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


def check_span(path: str, start: int, end: int, due: tuple[int, ...] = ()) -> BlockResult:
    """`blocks.check_block` over the bytes `path[start:end]` (a BOM at the file's start
    skipped); its `stop` is a file offset."""
    with open(path, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    if start == 0 and data.startswith(_BOM):
        data, start = data[len(_BOM) :], start + len(_BOM)
    result = check_block(data, due)
    return result if result.stop is None else replace(result, stop=start + result.stop)


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
    below `min_parallel_bytes`, is verified in this process, a span at a time."""
    verifier = LogVerifier(frontier=Frontier(0), checkpoint=checkpoint, roots_at=roots_at)
    count = workers if workers is not None else (os.cpu_count() or 1)
    spans = split_spans(path, span_bytes)
    name, due = str(path), verifier.due_sizes
    if count <= 1 or len(spans) < 2 or path.stat().st_size < min_parallel_bytes:
        _join(verifier, path, spans, (check_span(name, a, b, due) for a, b in spans), progress)
        return verifier
    # Spawned, not forked: the caller may run threads (a progress bar) a fork would copy.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(count, len(spans)), mp_context=context) as pool:
        starts, ends = zip(*spans, strict=True)
        results = pool.map(check_span, [name] * len(spans), starts, ends, [due] * len(spans))
        _join(verifier, path, spans, results, progress)
        pool.shutdown(cancel_futures=True)
    return verifier


def _join(
    verifier: LogVerifier,
    path: Path,
    spans: list[tuple[int, int]],
    results: Iterator[BlockResult],
    progress: Callable[[int], None] | None,
) -> None:
    """Fold the spans' results into `verifier` in file order; what a span did not take (or a
    span that does not continue the chain) is verified here line by line."""
    for (start, end), span in zip(spans, results, strict=True):
        if not verifier.ok:
            return
        rest = take_block(verifier, span, start, progress)
        if rest is not None and verifier.ok:
            _feed_lines(verifier, path, rest, end, progress)


def _feed_lines(
    verifier: LogVerifier,
    path: Path,
    start: int,
    end: int,
    progress: Callable[[int], None] | None,
) -> None:
    with path.open("rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    lines = export_lines(io.BytesIO(data), at_start=start == 0)
    feed_all(verifier, lines, progress=progress)

"""Offline verification of the audit log, for compliance staff who do not trust the server.

``verify_log`` streams entries (dicts as served by ``GET /audit/entries`` or read from a
JSON Lines export) and checks, for each one: canonical form, its ``hash`` recomputed from
its bytes, the ``prev_hash`` link, gapless ``seq`` from the start; it folds every leaf
into a Merkle frontier (O(log n) memory) and compares the root with a checkpoint verified
under a pinned key. ``verify_checkpoint_consistency`` checks that a newer signed checkpoint
extends one saved earlier; ``verify_entry_inclusion`` that one entry is in a checkpoint.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .blocks import BlockResult, check_block
from .checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from .entry import (
    ZERO_HASH,
    AuditEntry,
    _validate,
    canonical_line_bytes,
    decode_uint,
    fast_entry_bytes,
)
from .errors import AuditLogError, EntryMalformedError, ProofInvalidError
from .merkle import EMPTY_ROOT, Frontier, hash_leaf, verify_consistency, verify_inclusion

__all__ = [
    "ConsistencyResult",
    "LogVerifier",
    "VerificationResult",
    "export_lines",
    "feed_all",
    "feed_export",
    "iter_jsonl",
    "take_block",
    "verify_checkpoint_consistency",
    "verify_entry_inclusion",
    "verify_export",
    "verify_log",
]

_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Outcome of verifying a run of entries.

    ``checked`` entries passed every check; ``first_bad_seq`` is the first seq that did not
    (the entry that failed, or the one missing), ``None`` when valid or when the fault cannot
    be pinned on one entry (a root that differs from the signed checkpoint). ``code`` is a
    stable machine-readable reason; ``reason`` is for humans.
    """

    valid: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    code: str | None = None
    tree_size: int = 0
    root_hash: bytes | None = None
    checkpoint: Checkpoint | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "code": self.code,
            "tree_size": self.tree_size,
            "root_hash": None if self.root_hash is None else self.root_hash.hex(),
            "checkpoint_size": None if self.checkpoint is None else self.checkpoint.size,
        }


class LogVerifier:
    """Streaming verifier: ``feed`` entries in seq order, then read ``result()``.

    State is the next expected seq, the last hash and the Merkle frontier (at most 64
    hashes), so memory stays constant however long the log. To verify a range that does
    not start at 0 (``GET /audit/verify?from=``), pass the previous entry's hash as
    ``prev_hash`` and, to also get Merkle roots, the frontier at ``start_seq``.
    """

    __slots__ = (
        "_checked_root",
        "_checkpoint",
        "_failure",
        "_hashes",
        "_next_seq",
        "_next_stop",
        "_prev_hex",
        "_prev_raw",
        "_roots",
        "_start_seq",
        "_stops",
    )

    def __init__(
        self,
        *,
        start_seq: int = 0,
        prev_hash: bytes = ZERO_HASH,
        frontier: Frontier | None = None,
        checkpoint: Checkpoint | None = None,
        roots_at: Iterable[int] = (),
    ) -> None:
        if start_seq == 0 and frontier is None:
            frontier = Frontier(0)
        if frontier is not None and frontier.size != start_seq:
            raise ValueError("the frontier must be the tree at start_seq")
        if start_seq == 0 and prev_hash != ZERO_HASH:
            raise ValueError("the chain starts from 32 zero bytes")
        if checkpoint is not None and frontier is None:
            raise ValueError("checking a checkpoint needs the frontier at start_seq")
        if checkpoint is not None and checkpoint.size < start_seq:
            raise ValueError("the checkpoint ends before start_seq")
        self._start_seq = start_seq
        self._next_seq = start_seq
        self._prev_hex = prev_hash.hex()
        self._prev_raw = prev_hash
        self._hashes: list[bytes] | None = None if frontier is None else list(frontier.hashes)
        self._checkpoint = checkpoint
        self._checked_root = False
        self._failure: tuple[str, str, int | None] | None = None
        self._roots: dict[int, bytes | None] = {}
        wanted = {n for n in roots_at if n > start_seq}
        if checkpoint is not None and checkpoint.size > start_seq:
            wanted.add(checkpoint.size)
        if start_seq in roots_at:
            self._roots[start_seq] = self.root()
        #: Tree sizes where something is due (the checkpoint's root, a root asked for), in
        #: order; `_next_stop` is the first of them, the one per-entry comparison.
        self._stops = sorted(wanted, reverse=True)
        self._next_stop = self._stops.pop() if self._stops else -1
        self._check_checkpoint()

    @property
    def ok(self) -> bool:
        return self._failure is None

    @property
    def tree_size(self) -> int:
        return self._next_seq

    def root_at(self, size: int) -> bytes | None:
        """The Merkle root when the tree had `size` entries (a size given in `roots_at` and
        reached; None otherwise)."""
        return self._roots.get(size)

    def root(self) -> bytes | None:
        """Merkle root of everything fed so far (None without a starting frontier)."""
        if self._hashes is None:
            return None
        if not self._hashes:
            return EMPTY_ROOT
        cur = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            cur = _sha256(b"\x01" + left + cur).digest()
        return cur

    def _fail(self, code: str, reason: str, seq: int | None) -> bool:
        self._failure = (code, reason, seq)
        return False

    def fail_unreadable(self, reason: str) -> bool:
        """Record that the next entry could not even be read (e.g. a broken export line)."""
        if self._failure is None:
            self._fail("malformed", reason, self._next_seq)
        return False

    def _check_checkpoint(self) -> None:
        cp = self._checkpoint
        if cp is None or self._failure is not None or cp.size != self._next_seq:
            return
        self._checked_root = True
        root = self.root()
        if root != cp.root_hash:
            self._fail(
                "checkpoint_root_mismatch",
                f"Merkle root of entries 0..{cp.size - 1} differs from the signed checkpoint",
                None,
            )

    def feed(self, entry: Mapping[str, Any] | AuditEntry) -> bool:
        """Check one entry; return False (and ignore later entries) once anything fails.

        A served or exported entry that is canonical and links to the one before takes the
        fast path (`entry.fast_entry_bytes`, then the recomputed hash must equal the stated
        one); anything else the exact path below, which names the first failure.
        """
        if self._failure is not None:
            return False
        seq = self._next_seq
        data = fast_entry_bytes(entry, seq, self._prev_hex)
        if data is not None:
            raw = _sha256(self._prev_raw + data).digest()
            if raw.hex() == entry["hash"]:  # type: ignore[index]
                return self._advance(seq, data, raw)
        return self._feed_exactly(entry, seq)

    def feed_line(self, line: str) -> bool:
        """Check one line of a JSON Lines export (as `feed` does its parsed entry).

        A line that is exactly the entry's canonical text is checked without parsing it
        (`entry.canonical_line_bytes`); any other line is parsed and goes through `feed`.
        A line that is not JSON fails the verification as unreadable.
        """
        if self._failure is not None:
            return False
        seq = self._next_seq
        found = canonical_line_bytes(line, seq, self._prev_hex)
        if found is not None:
            data, stated = found
            raw = _sha256(self._prev_raw + data).digest()
            if raw.hex() == stated:
                return self._advance(seq, data, raw)
        try:
            entry = _parse_line(line)
        except ValueError as exc:
            return self.fail_unreadable(f"unreadable entry: {exc}")
        return self.feed(entry)

    @property
    def due_sizes(self) -> tuple[int, ...]:
        """The tree sizes still ahead where a root is due (the checkpoint's, those asked for
        in `roots_at`): `feed_subtrees` must be given no subtree that spans one."""
        if self._next_stop < 0:
            return ()
        return (self._next_stop, *reversed(self._stops))

    def feed_subtrees(self, subtrees: Sequence[tuple[int, bytes]], last_hash: bytes) -> bool:
        """Fold in entries already checked elsewhere, from the next seq: the perfect subtrees
        `(level, hash)` covering their leaves, left to right (`merkle.subtrees_of_range`), and
        the hash of the last entry (the chain continues from it).

        For `blocks.check_block`, whose every entry passed the same checks as `feed_line`
        from a seq and previous hash that the caller has matched with `next_seq`/`prev_hash`.
        Raises ValueError, changing nothing, when a subtree is not aligned where it would go
        or spans a due size (the caller then verifies those entries line by line).
        """
        if self._failure is not None:
            return False
        hashes = self._hashes
        if hashes is None:
            raise ValueError("folding subtrees needs the frontier")
        dues = iter(self.due_sizes)
        seq, due = self._next_seq, next(dues, -1)
        for level, _ in subtrees:
            width = 1 << level
            if seq & (width - 1) or seq < due < seq + width:
                raise ValueError("a subtree is not aligned with the tree or spans a due size")
            seq += width
            if seq == due:
                due = next(dues, -1)
        seq = self._next_seq
        for level, node in subtrees:
            cur, size = node, seq >> level
            while size & 1:
                cur = _sha256(b"\x01" + hashes.pop() + cur).digest()
                size >>= 1
            hashes.append(cur)
            seq += 1 << level
            if seq == self._next_stop:
                self._next_seq = seq
                if not self._stop():
                    return False
        self._next_seq = seq
        self._prev_raw = last_hash
        self._prev_hex = last_hash.hex()
        return True

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def prev_hash(self) -> bytes:
        """The hash of the last entry fed (what the next one's `prev_hash` must be)."""
        return self._prev_raw

    def _advance(self, seq: int, data: bytes, raw: bytes) -> bool:
        """Entry `seq` (its bytes `data`, its hash `raw`) passed: chain and fold it in."""
        self._prev_hex = raw.hex()
        self._prev_raw = raw
        hashes = self._hashes
        if hashes is not None:
            cur = _sha256(b"\x00" + data).digest()
            size = seq
            while size & 1:
                cur = _sha256(b"\x01" + hashes.pop() + cur).digest()
                size >>= 1
            hashes.append(cur)
        self._next_seq = seq + 1
        if seq + 1 == self._next_stop:
            return self._stop()
        return True

    def _stop(self) -> bool:
        """At a size where something is due: keep the root asked for, check the checkpoint."""
        size = self._next_seq
        self._roots[size] = self.root()
        self._next_stop = self._stops.pop() if self._stops else -1
        if self._checkpoint is not None and self._checkpoint.size == size:
            self._check_checkpoint()
        return self._failure is None

    def _feed_exactly(self, entry: Mapping[str, Any] | AuditEntry, seq: int) -> bool:
        try:
            if isinstance(entry, AuditEntry):
                data = entry.entry_bytes
                entry_seq, prev_hex, hash_hex = entry.seq, entry.prev_hash.hex(), entry.hash.hex()
            else:
                data = _validate(entry, with_hash=True)
                entry_seq = decode_uint(entry["seq"])
                prev_hex, hash_hex = entry["prev_hash"], entry["hash"]
        except (EntryMalformedError, UnicodeEncodeError) as exc:
            return self._fail("malformed", f"entry at seq {seq}: {exc}", seq)
        if entry_seq != seq:
            return self._fail("seq_gap", f"expected seq {seq}, got {entry_seq}", seq)
        if prev_hex != self._prev_hex:
            return self._fail(
                "prev_hash_mismatch", f"seq {seq}: prev_hash does not link to the entry before", seq
            )
        digest = _sha256(bytes.fromhex(prev_hex) + data).hexdigest()
        if digest != hash_hex:
            return self._fail(
                "hash_mismatch", f"seq {seq}: hash does not match the entry's content", seq
            )
        return self._advance(seq, data, bytes.fromhex(hash_hex))

    def result(self) -> VerificationResult:
        """Final outcome; a checkpoint beyond the last entry fed is a failure."""
        checked = self._next_seq - self._start_seq
        cp = self._checkpoint
        if self._failure is None and cp is not None and not self._checked_root:
            self._fail(
                "checkpoint_beyond_entries",
                f"checkpoint covers {cp.size} entries, only {self._next_seq} were supplied",
                self._next_seq,
            )
        if self._failure is not None:
            code, reason, bad = self._failure
            return VerificationResult(
                False, checked, bad, reason, code, self._next_seq, self.root(), cp
            )
        return VerificationResult(True, checked, None, None, None, self._next_seq, self.root(), cp)


def _as_verifier(key: NoteVerifier | str) -> NoteVerifier:
    return key if isinstance(key, NoteVerifier) else NoteVerifier.from_string(key)


def verify_log(
    entries: Iterable[Mapping[str, Any] | AuditEntry],
    *,
    checkpoint_note: str | bytes | None = None,
    verifier_key: NoteVerifier | str | None = None,
    origin: str | None = None,
    start_seq: int = 0,
    prev_hash: bytes = ZERO_HASH,
    frontier: Frontier | None = None,
) -> VerificationResult:
    """Verify a stream of entries and, if given, a signed checkpoint over them.

    ``verifier_key`` is the pinned C2SP verifier key (``<name>+<keyid>+<key>``); the
    checkpoint is never trusted without it. Entries past the checkpoint size are still
    verified as a chain (and counted); the root is compared at exactly the checkpoint size.
    An iterator that raises ``ValueError`` (a broken JSON line) is reported as malformed.
    """
    checkpoint: Checkpoint | None = None
    if checkpoint_note is not None:
        if verifier_key is None:
            raise ValueError("a checkpoint can only be checked against a pinned verifier key")
        try:
            checkpoint = open_checkpoint(checkpoint_note, _as_verifier(verifier_key), origin=origin)
        except AuditLogError as exc:
            return VerificationResult(False, 0, None, str(exc), "checkpoint_invalid")
    verifier = LogVerifier(
        start_seq=start_seq, prev_hash=prev_hash, frontier=frontier, checkpoint=checkpoint
    )
    iterator = iter(entries)
    feed = verifier.feed
    while True:
        try:
            entry = next(iterator)
        except StopIteration:
            break
        except ValueError as exc:
            verifier.fail_unreadable(f"unreadable entry: {exc}")
            break
        if not feed(entry):
            break
    return verifier.result()


#: The C scanner `json.loads` ends in (`JSONDecoder.__init__` sets it; typeshed omits it).
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
#: Bytes read from an export at a time (lines are split and decoded a block at once).
READ_BLOCK = 1 << 20
#: Bytes of an export checked at once by `feed_export` (`blocks.check_block`).
EXPORT_BLOCK = 4 << 20


def _parse_line(line: str) -> Any:
    """`json.loads(line)`, by the C scanner directly when the line is one bare value."""
    try:
        value, end = _scan_once(line, 0)
    except StopIteration:
        return json.loads(line)  # leading whitespace, or not JSON: json.loads decides
    if end != len(line):
        return json.loads(line)  # trailing whitespace ("\r"), or garbage after the value
    return value


def _lines(stream: IO[str] | IO[bytes], *, at_start: bool = True) -> Iterator[str]:
    """The lines of a file, read and UTF-8-decoded a block at a time (a BOM skipped when
    reading from the start of the file, `at_start`).

    A block that does not decode is decoded line by line, so the lines before the bad one
    still come first and the error falls on the line that holds it.
    """
    pending: bytes | str = b""
    first = at_start
    while True:
        chunk = stream.read(READ_BLOCK)
        if not chunk:
            break
        if isinstance(chunk, str):
            text = (pending if isinstance(pending, str) else "") + chunk
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            cut = text.rfind("\n") + 1
            pending = text[cut:]
            yield from text[:cut].split("\n")
            continue
        data = (pending if isinstance(pending, bytes) else b"") + chunk
        if first and data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        first = False
        cut = data.rfind(b"\n") + 1
        block, pending = data[:cut], data[cut:]
        try:
            yield from block.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            for raw in block.split(b"\n"):
                yield raw.decode("utf-8")
    if pending:
        yield pending.decode("utf-8") if isinstance(pending, bytes) else pending


def export_lines(stream: IO[str] | IO[bytes], *, at_start: bool = True) -> Iterator[str]:
    """The non-blank lines of a JSON Lines export, for `LogVerifier.feed_line` (`at_start`:
    the stream is at the file's start, where a BOM may be)."""
    for line in _lines(stream, at_start=at_start):
        if line and not line.isspace():
            yield line


def verify_export(
    stream: IO[str] | IO[bytes],
    *,
    checkpoint_note: str | bytes | None = None,
    verifier_key: NoteVerifier | str | None = None,
    origin: str | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 8192,
) -> VerificationResult:
    """`verify_log` for a JSON Lines export read from a file (`feed_export`: blocks of
    canonical lines by `blocks.check_block`, anything else line by line with `feed_line`).

    ``progress(n)`` is told every ``progress_every`` entries (and once at the end) how many
    more were checked: cheap enough for a progress bar over millions of entries.
    """
    checkpoint: Checkpoint | None = None
    if checkpoint_note is not None:
        if verifier_key is None:
            raise ValueError("a checkpoint can only be checked against a pinned verifier key")
        try:
            checkpoint = open_checkpoint(checkpoint_note, _as_verifier(verifier_key), origin=origin)
        except AuditLogError as exc:
            return VerificationResult(False, 0, None, str(exc), "checkpoint_invalid")
    verifier = LogVerifier(frontier=Frontier(0), checkpoint=checkpoint)
    feed_export(verifier, stream, progress=progress, every=progress_every)
    return verifier.result()


class _Steps:
    """Progress told in steps of `every` entries, whatever the sizes of the runs added."""

    __slots__ = ("_every", "_pending", "_progress")

    def __init__(self, progress: Callable[[int], None] | None, every: int) -> None:
        self._progress, self._every, self._pending = progress, every, 0

    def add(self, count: int) -> None:
        if self._progress is None:
            return
        self._pending += count
        while self._pending >= self._every:
            self._progress(self._every)
            self._pending -= self._every

    def flush(self) -> None:
        if self._progress is not None and self._pending:
            self._progress(self._pending)
            self._pending = 0


def take_block(
    verifier: LogVerifier,
    block: BlockResult,
    start: int,
    progress: Callable[[int], None] | None = None,
) -> int | None:
    """Fold a checked block (`blocks.check_block`, which began at offset `start`) into the
    verifier when it continues the chain; the offset from which its lines must be verified
    line by line (the block's start when it does not join), None when none are left."""
    if not block.count:
        return block.stop
    if block.first_seq != verifier.next_seq or block.first_prev != verifier.prev_hash.hex():
        return start
    try:
        joined = verifier.feed_subtrees(block.subtrees, block.last_hash)
    except ValueError:
        return start
    if not joined:  # a root due inside the block differs from the signed one
        return None
    if progress is not None:
        progress(block.count)
    return block.stop


def feed_export(
    verifier: LogVerifier,
    stream: IO[str] | IO[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    every: int = 8192,
) -> None:
    """Feed a JSON Lines export from its start until an entry fails: a binary stream a block
    of `EXPORT_BLOCK` bytes at a time (`blocks.check_block`, the lines it does not take by
    `feed_line`), a text stream line by line. Progress is told every `every` entries."""
    steps = _Steps(progress, every)
    try:
        if isinstance(stream, io.TextIOBase):
            feed_all(verifier, export_lines(stream), progress=steps.add, every=every)
            return
        pending, first = b"", True
        while verifier.ok:
            chunk = stream.read(EXPORT_BLOCK)
            if isinstance(chunk, str):  # a text stream that is not a TextIOBase
                text = io.StringIO(chunk + stream.read())  # type: ignore[operator]
                feed_all(verifier, export_lines(text), progress=steps.add, every=every)
                return
            data = pending + chunk
            if first:
                data, first = data.removeprefix(codecs.BOM_UTF8), False
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            block, pending = data[:cut], data[cut:]
            if block:
                rest = take_block(verifier, check_block(block, verifier.due_sizes), 0, steps.add)
                if rest is not None and verifier.ok:
                    lines = export_lines(io.BytesIO(block[rest:]), at_start=False)
                    feed_all(verifier, lines, progress=steps.add, every=every)
            if not chunk:
                return
    finally:
        steps.flush()


def feed_all(
    verifier: LogVerifier,
    lines: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
    every: int = 8192,
) -> None:
    """Feed export lines until one fails; report progress in steps of ``every`` entries."""
    feed = verifier.feed_line
    done = 0
    try:
        if progress is None:
            for line in lines:
                if not feed(line):
                    break
            return
        for line in lines:
            if not feed(line):
                break
            done += 1
            if done == every:
                progress(done)
                done = 0
    except ValueError as exc:  # a block of the file that is not UTF-8
        verifier.fail_unreadable(f"unreadable entry: {exc}")
    finally:
        if progress is not None and done:
            progress(done)


def iter_jsonl(stream: IO[str] | IO[bytes] | Iterable[str | bytes]) -> Iterator[Any]:
    """Parse a JSON Lines export lazily (blank lines skipped); bad JSON raises ValueError.

    A file (anything with `read`) is read in blocks of `READ_BLOCK` bytes, UTF-8; other
    iterables are taken line by line (`json.loads` accepts `bytes` lines in any JSON encoding).
    """
    if hasattr(stream, "read"):
        for line in _lines(stream):  # type: ignore[arg-type]
            if line and not line.isspace():
                yield _parse_line(line)
        return
    for item in stream:
        if isinstance(item, str):
            if item and not item.isspace():
                yield _parse_line(item)
        elif item.strip():
            yield json.loads(item)


@dataclass(frozen=True, slots=True)
class ConsistencyResult:
    """Outcome of checking that a new checkpoint extends an old one."""

    valid: bool
    old_size: int | None
    new_size: int | None
    reason: str | None
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "reason": self.reason,
            "code": self.code,
        }


def _proof_hashes(proof: Sequence[bytes | str]) -> list[bytes]:
    out: list[bytes] = []
    for item in proof:
        if isinstance(item, str):
            if len(item) != 64 or item.lower() != item:
                raise ProofInvalidError("proof hashes must be 64 lowercase hex digits")
            try:
                out.append(bytes.fromhex(item))
            except ValueError as exc:
                raise ProofInvalidError("proof hash is not hex") from exc
        elif isinstance(item, bytes | bytearray):
            out.append(bytes(item))
        else:
            raise ProofInvalidError("proof hashes must be hex strings or bytes")
    return out


def verify_checkpoint_consistency(
    old_note: str | bytes,
    new_note: str | bytes,
    proof: Sequence[bytes | str] | Mapping[str, Any],
    verifier_key: NoteVerifier | str,
    *,
    old_verifier_key: NoteVerifier | str | None = None,
    origin: str | None = None,
) -> ConsistencyResult:
    """Check that ``new_note`` is an append-only extension of the previously saved ``old_note``.

    ``proof`` is the API's ``{first, second, hashes}`` object or just the list of hashes.
    Both notes must verify under the pinned key (``old_verifier_key`` if the log's key was
    rotated since). From an empty old tree any new tree is consistent (C2SP witness rule),
    but only with an empty proof.
    """
    try:
        new_key = _as_verifier(verifier_key)
        old_key = new_key if old_verifier_key is None else _as_verifier(old_verifier_key)
        old = open_checkpoint(old_note, old_key, origin=origin or new_key.name)
        new = open_checkpoint(new_note, new_key, origin=origin)
    except AuditLogError as exc:
        return ConsistencyResult(False, None, None, str(exc), "checkpoint_invalid")
    try:
        if isinstance(proof, Mapping):
            if proof.get("first") != old.size or proof.get("second") != new.size:
                raise ProofInvalidError("proof sizes do not match the two checkpoints")
            hashes = _proof_hashes(proof.get("hashes") or [])
        else:
            hashes = _proof_hashes(proof)
        if new.size < old.size:
            raise ProofInvalidError(f"new tree ({new.size}) is smaller than old ({old.size})")
        if old.size == 0:
            if hashes or old.root_hash != EMPTY_ROOT:
                raise ProofInvalidError("from the empty tree the proof must be empty")
        else:
            verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    except ProofInvalidError as exc:
        return ConsistencyResult(False, old.size, new.size, str(exc), "inconsistent")
    return ConsistencyResult(True, old.size, new.size, None, None)


def verify_entry_inclusion(
    entry: Mapping[str, Any] | AuditEntry,
    proof: Mapping[str, Any],
    checkpoint: Checkpoint,
) -> None:
    """Raise unless ``entry`` (its recomputed hash too) is leaf ``seq`` of ``checkpoint``.

    ``proof`` is the API's ``{leaf_index, tree_size, hashes}``; ``checkpoint`` must come from
    ``open_checkpoint`` with a pinned key.
    """
    if isinstance(entry, AuditEntry):
        data, seq, prev, stated = entry.entry_bytes, entry.seq, entry.prev_hash, entry.hash
    else:
        data = _validate(entry, with_hash=True)
        seq = decode_uint(entry["seq"])
        prev, stated = bytes.fromhex(entry["prev_hash"]), bytes.fromhex(entry["hash"])
    if _sha256(prev + data).digest() != stated:
        raise EntryMalformedError(f"seq {seq}: hash does not match the entry's content")
    if proof.get("leaf_index") != seq or proof.get("tree_size") != checkpoint.size:
        raise ProofInvalidError("proof is not for this entry and checkpoint size")
    hashes = _proof_hashes(proof.get("hashes") or [])
    verify_inclusion(hash_leaf(data), seq, checkpoint.size, hashes, checkpoint.root_hash)

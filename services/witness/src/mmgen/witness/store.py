"""The witness's own state: the latest checkpoint it cosigned for each log, and evidence.

Why a file and not a database: the state is one small record per log (size, root hash, the
note), written once per cosignature; a second party runs the witness on any machine without
a database server. The file (`heads.json` in the store folder) is replaced atomically —
written to a temporary file, flushed to disk, renamed over the old one, the folder synced —
so a crash leaves either the old state or the new one, never a mix. An exclusive lock on
`witness.lock` keeps a second witness process off the same folder (two writers could each
cosign a different history). A state file that cannot be read stops the witness instead of
starting empty: an empty state would let a log rewrite its history unnoticed.

Refusals of validly signed checkpoints (an inconsistent proof, another root at a cosigned
size) are kept in `evidence.jsonl` (C2SP: they may prove the log misbehaved), up to a cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from mmgen.auditlog.merkle import HASH_SIZE
from mmgen.witness.domain import TreeHead

STATE_FILE = "heads.json"
LOCK_FILE = "witness.lock"
EVIDENCE_FILE = "evidence.jsonl"
FORMAT = "mmgen-witness-state/1"
#: Evidence beyond this size is not written (logged only): a misbehaving log cannot fill the disk.
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024


class WitnessStoreError(Exception):
    """The state cannot be opened (locked by another witness, unreadable): do not start."""


class WitnessStore(Protocol):
    """Where a witness keeps what it cosigned (port; the file store and a fake implement it)."""

    def heads(self) -> Mapping[str, TreeHead]:
        """The latest cosigned head of every log (by origin)."""
        ...

    async def replace(self, expected: TreeHead, new: TreeHead) -> bool:
        """Record `new` if the log's head is still `expected` (False otherwise), durably."""
        ...

    async def record_evidence(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def _same(a: TreeHead | None, b: TreeHead) -> bool:
    if a is None:
        return b.size == 0
    return a.size == b.size and a.root_hash == b.root_hash


class InMemoryWitnessStore:
    """A `WitnessStore` in memory (unit tests)."""

    def __init__(self) -> None:
        self._heads: dict[str, TreeHead] = {}
        self.evidence: list[dict[str, Any]] = []

    def heads(self) -> Mapping[str, TreeHead]:
        return dict(self._heads)

    async def replace(self, expected: TreeHead, new: TreeHead) -> bool:
        if not _same(self._heads.get(new.origin), expected):
            return False
        self._heads[new.origin] = new
        return True

    async def record_evidence(self, record: Mapping[str, Any]) -> None:
        self.evidence.append(dict(record))

    def close(self) -> None:
        return None


class JsonFileWitnessStore:
    """A `WitnessStore` in one JSON file, replaced atomically, with a folder lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock: IO[str] | None = open(folder / LOCK_FILE, "a")  # noqa: SIM115 - held open
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            self._lock = None
            raise WitnessStoreError(
                f"{folder} is in use by another witness process (lock {LOCK_FILE})"
            ) from exc
        try:
            self._heads = self._load()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        return self.folder / STATE_FILE

    def _load(self) -> dict[str, TreeHead]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            heads = {}
            for origin, item in data["logs"].items():
                size, root = item["size"], base64.b64decode(item["root_hash"], validate=True)
                if type(size) is not int or size < 0 or len(root) != HASH_SIZE:
                    raise ValueError(f"bad head for {origin!r}")
                heads[origin] = TreeHead(origin, size, root, str(item["note"]))
            return heads
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise WitnessStoreError(
                f"{self.path} is unreadable ({exc}); refusing to start without the heads "
                "this witness cosigned (restore the file from a backup)"
            ) from exc

    def heads(self) -> Mapping[str, TreeHead]:
        return dict(self._heads)

    async def replace(self, expected: TreeHead, new: TreeHead) -> bool:
        if not _same(self._heads.get(new.origin), expected):
            return False
        heads = {**self._heads, new.origin: new}
        await asyncio.to_thread(self._write, heads)
        self._heads = heads
        return True

    def _write(self, heads: Mapping[str, TreeHead]) -> None:
        document = {
            "format": FORMAT,
            "logs": {
                origin: {
                    "size": head.size,
                    "root_hash": base64.b64encode(head.root_hash).decode("ascii"),
                    "note": head.note,
                }
                for origin, head in sorted(heads.items())
            },
        }
        tmp = self.folder / (STATE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    async def record_evidence(self, record: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self._append_evidence, dict(record))

    def _append_evidence(self, record: dict[str, Any]) -> None:
        path = self.folder / EVIDENCE_FILE
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size >= MAX_EVIDENCE_BYTES:
                return
        line = json.dumps(record, sort_keys=True) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()

"""What `mmgen-verify` checks: the whole log, one entry's inclusion, against trusted keys.

- **verify**: every entry re-hashed and chained from seq 0, the Merkle root recomputed and
  compared with the signed head (whose log signature, and witness cosignatures up to the
  quorum, must verify under pinned keys), and a head saved on an earlier run must be a
  prefix of the log (the root at its size must be its root): a server that rewrote history
  fails there even with a validly signed new head. Entries come from the API or from a JSON
  Lines export (read by lines, `mmgen.auditlog.verify.LogVerifier.feed_line`).
- **inclusion**: one entry and its RFC 9162 proof against the latest trusted head.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmgen.auditlog.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from mmgen.auditlog.errors import AuditLogError, QuorumNotMetError
from mmgen.auditlog.merkle import Frontier
from mmgen.auditlog.parallel import verify_export_file as parallel_verify
from mmgen.auditlog.verify import (
    LogVerifier,
    verify_checkpoint_consistency,
    verify_entry_inclusion,
)
from mmgen.verifier.keys import CheckFailedError, TrustedKeys

if TYPE_CHECKING:  # the HTTP client is imported only by what talks to a server
    import httpx

    from mmgen.verifier.client import AuditApi

Progress = Callable[[int], None]
#: The purpose declared on every `/audit` read (`X-Purpose`).
DEFAULT_PURPOSE = "legal_compliance"


@dataclass
class Verdict:
    """Outcome of `verify`: what was checked and the first failure, if any."""

    valid: bool
    checked: int = 0
    tree_size: int = 0
    first_bad_seq: int | None = None
    code: str | None = None
    reason: str | None = None
    checkpoint_size: int | None = None
    consistent_with_saved: bool | None = None
    witnesses: list[str] = field(default_factory=list)
    quorum: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "tree_size": self.tree_size,
            "first_bad_seq": self.first_bad_seq,
            "code": self.code,
            "reason": self.reason,
            "checkpoint_size": self.checkpoint_size,
            "consistent_with_saved": self.consistent_with_saved,
            "witnesses": self.witnesses,
            "quorum": self.quorum,
        }


def _trusted(key: NoteVerifier | TrustedKeys) -> TrustedKeys:
    return key if isinstance(key, TrustedKeys) else TrustedKeys(key)


@dataclass
class _Heads:
    """The signed head checked against, the saved one, and who cosigned the former."""

    checkpoint: Checkpoint | None
    saved: Checkpoint | None
    witnesses: list[str]


def _open_heads(
    trusted: TrustedKeys, checkpoint_note: str | None, saved_note: str | None
) -> _Heads | Verdict:
    try:
        saved = open_checkpoint(saved_note, trusted.log) if saved_note else None
    except AuditLogError as exc:
        return Verdict(False, code="checkpoint_invalid", reason=f"saved head refused: {exc}")
    if not checkpoint_note:
        return _Heads(None, saved, [])
    try:
        witnessed = trusted.open(checkpoint_note)
    except QuorumNotMetError as exc:
        return Verdict(
            False, code="witness_quorum_not_met", reason=f"signed head refused: {exc}",
            quorum=trusted.quorum,
        )  # fmt: skip
    except AuditLogError as exc:
        return Verdict(False, code="checkpoint_invalid", reason=f"signed head refused: {exc}")
    names = [c.name for c in witnessed.cosignatures]
    return _Heads(witnessed.checkpoint, saved, names)


def _new_verifier(heads: _Heads) -> LogVerifier:
    roots = () if heads.saved is None else (heads.saved.size,)
    return LogVerifier(frontier=Frontier(0), checkpoint=heads.checkpoint, roots_at=roots)


def _conclude(verifier: LogVerifier, heads: _Heads, trusted: TrustedKeys) -> Verdict:
    result = verifier.result()
    verdict = Verdict(
        result.valid,
        result.checked,
        result.tree_size,
        result.first_bad_seq,
        result.code,
        result.reason,
        heads.checkpoint.size if heads.checkpoint else None,
        witnesses=heads.witnesses,
        quorum=trusted.quorum,
    )
    if heads.checkpoint is None:
        verdict.notes.append("no signed head given: chain checked, Merkle root not compared")
    saved = heads.saved
    if saved is not None:
        if saved.size == 0:
            verdict.consistent_with_saved = True
        elif (root := verifier.root_at(saved.size)) is not None:
            verdict.consistent_with_saved = root == saved.root_hash
        elif result.valid:
            verdict.consistent_with_saved = False
            verdict.notes.append(
                f"the log ({result.tree_size}) is shorter than the saved head ({saved.size})"
            )
    return verdict


def _reject_if_inconsistent(verdict: Verdict, saved: Checkpoint | None) -> Verdict:
    if saved is not None and verdict.consistent_with_saved is False:
        verdict.valid = False
        verdict.code = verdict.code or "inconsistent_with_saved_head"
        verdict.reason = verdict.reason or (
            f"the log does not extend the saved head of size {saved.size}: history was rewritten"
        )
    return verdict


async def verify_entries(
    entries: AsyncIterator[dict[str, Any]] | Iterator[Any],
    *,
    key: NoteVerifier | TrustedKeys,
    checkpoint_note: str | None,
    saved_note: str | None,
    api: AuditApi | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> Verdict:
    """Check parsed entries (from seq 0) against a trusted head and a saved head."""
    trusted = _trusted(key)
    heads = _open_heads(trusted, checkpoint_note, saved_note)
    if isinstance(heads, Verdict):
        return heads
    verifier = _new_verifier(heads)
    feed = verifier.feed
    if isinstance(entries, Iterator):
        try:
            for entry in entries:
                if not feed(entry):
                    break
                if progress is not None:
                    progress(1)
        except ValueError as exc:
            verifier.fail_unreadable(f"unreadable export line: {exc}")
    else:
        async for entry in entries:
            if not feed(entry):
                break
            if progress is not None:
                progress(1)
    verdict = _conclude(verifier, heads, trusted)
    if api is not None and checkpoint_note and saved_note:
        await _check_served_consistency(verdict, api, heads, saved_note, checkpoint_note, trusted)
    return _reject_if_inconsistent(verdict, heads.saved)


def verify_export_file(
    path: Path,
    *,
    key: NoteVerifier | TrustedKeys,
    checkpoint_note: str | None,
    saved_note: str | None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Verdict:
    """Check a JSON Lines export file: canonical lines are not even parsed, and a large file's
    spans are checked on `workers` processes (default: the CPUs; `mmgen.auditlog.parallel`),
    with the verdict a line-by-line check gives."""
    trusted = _trusted(key)
    heads = _open_heads(trusted, checkpoint_note, saved_note)
    if isinstance(heads, Verdict):
        return heads
    roots = () if heads.saved is None else (heads.saved.size,)
    verifier = parallel_verify(
        path, checkpoint=heads.checkpoint, roots_at=roots, workers=workers, progress=progress
    )
    return _reject_if_inconsistent(_conclude(verifier, heads, trusted), heads.saved)


async def _check_served_consistency(
    verdict: Verdict,
    api: AuditApi,
    heads: _Heads,
    saved_note: str,
    checkpoint_note: str,
    trusted: TrustedKeys,
) -> None:
    """The server's own consistency proof between the saved head and the new one must hold
    too (the recomputed roots already decide; a refused proof is reported beside them)."""
    saved, checkpoint = heads.saved, heads.checkpoint
    if saved is None or checkpoint is None or saved.size > checkpoint.size:
        return
    proof = await api.get("/audit/proofs/consistency", first=saved.size, second=checkpoint.size)
    outcome = verify_checkpoint_consistency(saved_note, checkpoint_note, proof, trusted.log)
    if not outcome.valid:
        verdict.consistent_with_saved = False
        verdict.notes.append(f"server's consistency proof refused: {outcome.reason}")


async def verify_via_api(
    client: httpx.AsyncClient,
    key: NoteVerifier | TrustedKeys,
    *,
    saved_note: str | None = None,
    purpose: str = DEFAULT_PURPOSE,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[Verdict, str]:
    """Download the latest signed head and every entry it covers, and verify them."""
    from mmgen.verifier.client import AuditApi

    trusted = _trusted(key)
    api = AuditApi(client, purpose)
    latest = await api.get("/audit/checkpoints/latest")
    note: str = latest["note"]
    heads = _open_heads(trusted, note, saved_note)
    if isinstance(heads, Verdict):
        return heads, note
    assert heads.checkpoint is not None
    size = heads.checkpoint.size
    if on_total is not None:
        on_total(size)

    async def entries() -> AsyncIterator[dict[str, Any]]:
        async for page in api.pages(size):
            for item in page:
                yield item
            if progress is not None:
                progress(len(page))

    verdict = await verify_entries(
        entries(), key=trusted, checkpoint_note=note, saved_note=saved_note, api=api
    )
    return verdict, note


async def check_inclusion(
    client: httpx.AsyncClient,
    key: NoteVerifier | TrustedKeys,
    seq: int,
    purpose: str = DEFAULT_PURPOSE,
) -> dict[str, Any]:
    """Fetch entry `seq`, the latest trusted head and the inclusion proof; verify locally.

    Raises `AuditLogError` when the head is not trusted or the proof fails, and
    `CheckFailedError` when the entry is not covered by the head (nothing to check yet).
    """
    from mmgen.verifier.client import AuditApi

    trusted = _trusted(key)
    api = AuditApi(client, purpose)
    latest = await api.get("/audit/checkpoints/latest")
    witnessed = trusted.open(latest["note"])
    checkpoint = witnessed.checkpoint
    if seq >= checkpoint.size:
        raise CheckFailedError(
            f"seq {seq} is not covered by the latest signed head ({checkpoint.size})"
        )
    entry = await api.get(f"/audit/entries/{seq}")
    proof = await api.get("/audit/proofs/inclusion", seq=seq, tree_size=checkpoint.size)
    verify_entry_inclusion(entry, proof, checkpoint)
    return {
        "seq": seq,
        "tree_size": checkpoint.size,
        "entry": entry,
        "proof": proof,
        "witnesses": [c.name for c in witnessed.cosignatures],
    }

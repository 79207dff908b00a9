"""The keys a verification trusts: the log's pinned key, witnesses' keys and the quorum.

Keys are given on the command line or as `@FILE`, and obtained out of band — never fetched
from the server being checked (a server that lies about its history would lie about its key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmgen.auditlog.checkpoint import NoteVerifier
from mmgen.auditlog.cosignature import (
    CosignatureVerifier,
    WitnessedCheckpoint,
    open_cosigned_checkpoint,
)
from mmgen.auditlog.errors import AuditLogError


class CheckFailedError(Exception):
    """Verification could not be carried out (network, HTTP, input): exit code 2."""


def key_text(value: str) -> str:
    """The key itself, or the first line of `@FILE`."""
    if value.startswith("@"):
        try:
            return Path(value[1:]).expanduser().read_text().strip()
        except OSError as exc:
            raise CheckFailedError(f"cannot read the key file {value[1:]}: {exc}") from exc
    return value.strip()


def load_key(value: str) -> NoteVerifier:
    """The log's pinned verifier key (`<name>+<id>+<key>` or `@FILE`)."""
    try:
        return NoteVerifier.from_string(key_text(value))
    except AuditLogError as exc:
        raise CheckFailedError(f"bad public key: {exc}") from exc


def load_witness_keys(values: Sequence[str]) -> tuple[CosignatureVerifier, ...]:
    """Witness verifier keys; each value may hold several, separated by whitespace."""
    keys: list[CosignatureVerifier] = []
    for value in values:
        for text in key_text(value).split():
            try:
                keys.append(CosignatureVerifier.from_string(text))
            except AuditLogError as exc:
                raise CheckFailedError(f"bad witness key {text!r}: {exc}") from exc
    if len({(k.name, k.key_id) for k in keys}) != len(keys):
        raise CheckFailedError("a witness key is given twice")
    return tuple(keys)


@dataclass(frozen=True)
class TrustedKeys:
    """What a head must carry to be accepted: the log's signature, and at least `quorum`
    cosignatures by distinct pinned witnesses."""

    log: NoteVerifier
    witnesses: tuple[CosignatureVerifier, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.quorum <= len(self.witnesses):
            raise CheckFailedError(
                f"--quorum {self.quorum} needs at least {self.quorum} --witness-key "
                f"(given: {len(self.witnesses)})"
            )

    @classmethod
    def of(
        cls, public_key: str, witness_keys: Sequence[str] = (), quorum: int | None = None
    ) -> TrustedKeys:
        """From the command's options; without `--quorum`, every given witness must cosign."""
        witnesses = load_witness_keys(witness_keys)
        return cls(load_key(public_key), witnesses, len(witnesses) if quorum is None else quorum)

    def open(self, note: str | bytes) -> WitnessedCheckpoint:
        """The head, verified; raises `AuditLogError` (`QuorumNotMetError`: too few witnesses)."""
        return open_cosigned_checkpoint(note, self.log, self.witnesses, quorum=self.quorum)

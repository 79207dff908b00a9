"""`mmgen receipt verify FILE`: check an erasure receipt without trusting the retention service.

A receipt (a compact JWS retention signed when an erasure reached `verified`) is checked in
two steps, both against keys the verifier holds:

The checking is `mmgen-verify receipt verify`'s (`mmgen.verifier.receipts`), so an officer
and an outside auditor get the same verdict:

1. the signature, under retention's receipt key set (`--jwks FILE` pinned, or fetched from
   `--retention-url`/.well-known/jwks.json — the key that signed must be in it);
2. the evidence: for every service's `audit_seq` the audit-log entry and its inclusion proof
   are fetched from the audit API and checked against the receipt's checkpoint, whose note
   must verify under the audit log's PINNED public key (`--public-key`, as `mmgen audit`):
   each entry must be that service's `SubjectErased` of this subject.

Exit codes as `mmgen audit`: 0 valid; 1 invalid (signature or evidence); 2 could not check.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mmgen.auditlog.receipt import Ed25519Jwk, ReceiptVerification
from mmgen.verifier.cli import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    PublicKey,
    PurposeOpt,
    Token,
    Url,
)
from mmgen.verifier.client import AuditApi
from mmgen.verifier.client import open_client as _client
from mmgen.verifier.keys import CheckFailedError, TrustedKeys, load_key
from mmgen.verifier.receipts import check_receipt, load_jwks, read_token

receipt_app = typer.Typer(help="Verify signed erasure receipts (compliance).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

RetentionUrl = Annotated[
    str | None,
    typer.Option(
        "--retention-url",
        envvar="MMGEN_RETENTION_URL",
        help="retention's base URL, for its receipt key set (unless --jwks)",
    ),
]
JwksFile = Annotated[
    Path | None,
    typer.Option("--jwks", help="retention's receipt key set (JWKS), pinned, instead of fetched"),
]


def receipt_keys(pinned: Path | None, retention_url: str | None) -> dict[str, Ed25519Jwk]:
    """The receipt key set: the pinned JWKS file, else the one retention publishes."""
    if pinned is not None:
        return load_jwks(str(pinned))
    if not retention_url:
        raise CheckFailedError("give --jwks FILE or --retention-url (MMGEN_RETENTION_URL)")
    return load_jwks(retention_url.rstrip("/") + "/.well-known/jwks.json")


def _report(verdict: ReceiptVerification, as_json: bool) -> int:
    if as_json:
        console.print_json(json.dumps(verdict.to_json()))
    elif verdict.valid and verdict.receipt is not None:
        receipt = verdict.receipt
        console.print(
            f"[bold green]VALID[/] erasure receipt of request {receipt.request_id} "
            f"(subject {receipt.subject_id}), verified at {receipt.verified_at}"
        )
        for service in receipt.services:
            console.print(
                f"  {service.service:<10} keys shredded {service.keys_shredded}, "
                f"records deleted {dict(service.records_deleted)}, audit seq {service.audit_seq} "
                f"(in the signed log of size {receipt.checkpoint.tree_size})"
            )
        for hold in receipt.held:
            console.print(f"  held: {hold.category} ({hold.legal_basis}; hold {hold.hold_id})")
    else:
        console.print(f"[bold red]INVALID[/] ({verdict.code}): {verdict.reason}")
    return EXIT_OK if verdict.valid else EXIT_INVALID


@receipt_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="the receipt (compact JWS) as downloaded")],
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
    retention_url: RetentionUrl = None,
    jwks: JwksFile = None,
    purpose: PurposeOpt = "legal_compliance",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable verdict")] = False,
) -> None:
    """Check a receipt's signature and prove every audit_seq it names against its checkpoint
    (`--url`/`--token`: the audit API, as for `mmgen audit`)."""

    async def run(receipt: str) -> ReceiptVerification:
        trusted = TrustedKeys(load_key(public_key))
        keys = receipt_keys(jwks, retention_url)
        async with _client(url, token) as client:
            return await check_receipt(receipt, keys, trusted, AuditApi(client, purpose))

    try:
        verdict = asyncio.run(run(read_token(file)))
    except (CheckFailedError, OSError) as exc:
        err.print(f"[bold red]cannot verify:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    raise typer.Exit(_report(verdict, as_json))

"""`mmgen receipt verify FILE`: check an erasure receipt without trusting the retention service.

A receipt (a compact JWS retention signed when an erasure reached `verified`) is checked in
two steps, both against keys the verifier holds:

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
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from mmgen.auditlog.checkpoint import NoteVerifier
from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.receipt import (
    Ed25519Jwk,
    ReceiptVerification,
    evidence_needed,
    open_receipt,
    parse_jwks,
    verify_receipt,
)
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
from mmgen.verifier.keys import CheckFailedError, load_key

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


async def receipt_keys(pinned: bytes | None, retention_url: str | None) -> dict[str, Ed25519Jwk]:
    """The receipt key set: the pinned one (a JWKS document), else retention's published one."""
    try:
        if pinned is not None:
            return parse_jwks(pinned)
        if not retention_url:
            raise CheckFailedError("give --jwks FILE or --retention-url (MMGEN_RETENTION_URL)")
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(retention_url.rstrip("/") + "/.well-known/jwks.json")
        if response.status_code != 200:
            raise CheckFailedError(f"retention's JWKS: HTTP {response.status_code}")
        return parse_jwks(response.content)
    except (OSError, httpx.HTTPError) as exc:
        raise CheckFailedError(f"cannot read the receipt key set: {exc}") from exc
    except AuditLogError as exc:
        raise CheckFailedError(f"the receipt key set is not usable: {exc}") from exc


async def fetch_evidence(
    api: AuditApi, token: str, keys: dict[str, Ed25519Jwk]
) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """Entry and inclusion proof of every `audit_seq` (none when the signature fails: the
    verdict then says so without any network call)."""
    try:
        receipt = open_receipt(token, keys)
    except AuditLogError:
        return {}
    evidence: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for seq, size in evidence_needed(receipt):
        entry = await api.get(f"/audit/entries/{seq}")
        proof = await api.get("/audit/proofs/inclusion", seq=seq, tree_size=size)
        evidence[seq] = (entry, proof)
    return evidence


async def check_receipt(
    token: str,
    *,
    keys: dict[str, Ed25519Jwk],
    log_key: NoteVerifier | str,
    client: httpx.AsyncClient,
    purpose: str = "legal_compliance",
) -> ReceiptVerification:
    """The verdict on one receipt, with the evidence fetched from the audit API."""
    evidence = await fetch_evidence(AuditApi(client, purpose), token, keys)
    return verify_receipt(token, keys=keys, log_key=log_key, evidence=evidence)


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

    async def run(receipt: str, pinned: bytes | None) -> ReceiptVerification:
        log_key = load_key(public_key)
        keys = await receipt_keys(pinned, retention_url)
        async with _client(url, token) as client:
            return await check_receipt(
                receipt, keys=keys, log_key=log_key, client=client, purpose=purpose
            )

    try:
        verdict = asyncio.run(
            run(file.read_text().strip(), jwks.read_bytes() if jwks is not None else None)
        )
    except (CheckFailedError, OSError) as exc:
        err.print(f"[bold red]cannot verify:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    raise typer.Exit(_report(verdict, as_json))

"""Erasure receipts checked without trusting the retention service or the audit log's server.

`mmgen.auditlog.receipt` does the checking (the JWS signature under retention's published
keys; each erasure's audit entry proved against the checkpoint inside the receipt, which
the log's pinned key — and, when asked, pinned witnesses — must have signed). This module
fetches what it needs: the key set (a file, or a URL) and the evidence from the audit API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.receipt import (
    Ed25519Jwk,
    ReceiptVerification,
    evidence_needed,
    open_receipt,
    parse_jwks,
    verify_receipt,
)
from mmgen.verifier.client import AuditApi
from mmgen.verifier.keys import CheckFailedError, TrustedKeys


def read_token(source: Path) -> str:
    """The compact JWS from a file (`-`: standard input is read by the caller)."""
    try:
        return source.read_text().strip()
    except OSError as exc:
        raise CheckFailedError(f"cannot read the receipt {source}: {exc}") from exc


def load_jwks(source: str) -> dict[str, Ed25519Jwk]:
    """Retention's key set from a file (`FILE` or `@FILE`) or an http(s) URL."""
    try:
        if source.startswith(("https://", "http://")):
            response = httpx.get(source, timeout=30)
            if response.status_code != 200:
                raise CheckFailedError(f"GET {source}: HTTP {response.status_code}")
            document: Any = response.json()
        else:
            document = json.loads(Path(source.removeprefix("@")).read_text())
        return parse_jwks(document)
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise CheckFailedError(f"cannot load the receipt keys from {source}: {exc}") from exc


async def check_receipt(
    token: str, keys: dict[str, Ed25519Jwk], trusted: TrustedKeys, api: AuditApi
) -> ReceiptVerification:
    """Open the receipt, fetch each erasure's entry and inclusion proof, check everything."""
    try:
        receipt = open_receipt(token, keys)
    except AuditLogError as exc:
        return ReceiptVerification(False, None, "signature", str(exc))
    if trusted.witnesses:
        try:
            trusted.open(receipt.checkpoint.note)
        except AuditLogError as exc:
            return ReceiptVerification(False, receipt, "evidence", f"checkpoint refused: {exc}")
    evidence: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for seq, size in evidence_needed(receipt):
        entry = await api.get(f"/audit/entries/{seq}")
        proof = await api.get("/audit/proofs/inclusion", seq=seq, tree_size=size)
        evidence[seq] = (entry, proof)
    return verify_receipt(token, keys=keys, log_key=trusted.log, evidence=evidence)

"""`mmgen receipt verify`'s checks against an audit API served in process (httpx mock).

The log is a real hash chain with a Merkle tree and signed heads (mmgen.auditlog); the receipt
is signed as retention signs it. A tampered receipt fails on its signature, a receipt proved
against another log's key or naming another subject's entry fails on its evidence.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmgen.auditlog import merkle
from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.memory import InMemoryNodeStore
from mmgen.auditlog.receipt import (
    ErasureReceipt,
    ReceiptCheckpoint,
    ReceiptService,
    ReceiptSigner,
    parse_jwks,
)
from mmgen.cli.receipt import _report, receipt_keys
from mmgen.verifier.cli import EXIT_INVALID, EXIT_OK
from mmgen.verifier.client import AuditApi
from mmgen.verifier.keys import TrustedKeys
from mmgen.verifier.receipts import check_receipt as verify_with

ORIGIN = "audit.mmgen.test/log"
AT = datetime(2027, 2, 1, 9, tzinfo=UTC)


class Log:
    """An audit log with its tree, serving `/audit/entries/{seq}` and inclusion proofs."""

    def __init__(self) -> None:
        self.signer = NoteSigner.generate(ORIGIN)
        self.builder = ChainBuilder()
        self.appender = merkle.TreeAppender()
        self.nodes = InMemoryNodeStore()
        self.entries: list[dict[str, Any]] = []
        self.fetched: list[str] = []

    def erased(self, service: str, subject: str) -> int:
        entry = self.builder.append(
            event_id=str(uuid.uuid4()),
            producer=service,
            producer_seq=len(self.entries) + 1,
            event_type=f"{service}.SubjectErased",
            action="erase",
            subject_id=subject,
            actor_id="retention",
            actor_role="service",
            purpose="legal_compliance",
            resource={"type": "subject", "id": subject},
            categories=[],
            occurred_at=AT,
            recorded_at=AT,
        )
        self.nodes.put(self.appender.append(entry.leaf_hash))
        self.entries.append(entry.to_json())
        return entry.seq

    def head(self) -> ReceiptCheckpoint:
        size = len(self.entries)
        root = merkle.root_from_store(self.nodes, size)
        return ReceiptCheckpoint(
            size, root.hex(), sign_checkpoint(Checkpoint(ORIGIN, size, root), self.signer)
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetched.append(request.url.path)
        assert request.headers["X-Purpose"] == "legal_compliance"
        if request.url.path.startswith("/audit/entries/"):
            return httpx.Response(200, json=self.entries[int(request.url.path.rsplit("/", 1)[1])])
        if request.url.path == "/audit/proofs/inclusion":
            seq, size = int(request.url.params["seq"]), int(request.url.params["tree_size"])
            hashes = [h.hex() for h in merkle.inclusion_proof_from_store(self.nodes, seq, size)]
            return httpx.Response(
                200, json={"leaf_index": seq, "tree_size": size, "hashes": hashes}
            )
        return httpx.Response(404, json={})


def _receipt(log: Log, subject: str, signer: ReceiptSigner) -> str:
    seqs = {service: log.erased(service, subject) for service in ("identity", "consent")}
    log.erased("consent", str(uuid.uuid4()))  # someone else's, later
    receipt = ErasureReceipt(
        request_id=str(uuid.uuid4()),
        subject_id=subject,
        requested_at=AT,
        verified_at=AT,
        services=tuple(
            ReceiptService(service, 1, {"contact": 1}, (), seq) for service, seq in seqs.items()
        ),
        held=(),
        checkpoint=log.head(),
    )
    return signer.sign(receipt)


@pytest.fixture
def signer() -> ReceiptSigner:
    return ReceiptSigner(bytes(range(32)))


async def check_receipt(token: str, *, keys: Any, log_key: Any, client: httpx.AsyncClient) -> Any:
    """The command's check: the verifier's, with the evidence fetched through `client`."""
    return await verify_with(
        token, keys, TrustedKeys(log_key), AuditApi(client, "legal_compliance")
    )


async def test_a_receipt_verifies_with_its_evidence_fetched(
    signer: ReceiptSigner, tmp_path: Path
) -> None:
    log = Log()
    token = _receipt(log, str(uuid.uuid4()), signer)
    pinned = tmp_path / "jwks.json"
    pinned.write_text(json.dumps({"keys": [signer.jwk.to_jwk()]}))
    keys = receipt_keys(pinned, None)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(log.handle), base_url="http://a"
    ) as client:
        verdict = await check_receipt(
            token, keys=keys, log_key=log.signer.verifier(), client=client
        )
    assert verdict.valid, verdict.reason
    assert sorted(log.fetched) == sorted(
        [
            "/audit/entries/0",
            "/audit/entries/1",
            "/audit/proofs/inclusion",
            "/audit/proofs/inclusion",
        ]
    )
    assert _report(verdict, as_json=True) == EXIT_OK


async def test_tampering_and_another_log_fail(signer: ReceiptSigner) -> None:
    log = Log()
    token = _receipt(log, str(uuid.uuid4()), signer)
    keys = parse_jwks({"keys": [signer.jwk.to_jwk()]})
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[:-4]}AAAA"
    other_log = NoteSigner.generate(ORIGIN).verifier()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(log.handle), base_url="http://a"
    ) as client:
        bad_signature = await check_receipt(
            forged, keys=keys, log_key=log.signer.verifier(), client=client
        )
        assert (bad_signature.valid, bad_signature.code) == (False, "signature")
        wrong_key = await check_receipt(token, keys=keys, log_key=other_log, client=client)
        assert (wrong_key.valid, wrong_key.code) == (False, "evidence")
        # the server answers an entry of another subject for a seq: refused
        log.entries[0], log.entries[2] = log.entries[2], log.entries[0]
        swapped = await check_receipt(
            token, keys=keys, log_key=log.signer.verifier(), client=client
        )
        assert (swapped.valid, swapped.code) == (False, "evidence")
    assert _report(wrong_key, as_json=True) == EXIT_INVALID
    # signed by a key the pinned key set does not hold: refused before any fetch
    other = Log()
    stranger = _receipt(other, str(uuid.uuid4()), ReceiptSigner(bytes(range(1, 33))))
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(other.handle), base_url="http://a"
    ) as client:
        unknown = await check_receipt(
            stranger, keys=keys, log_key=other.signer.verifier(), client=client
        )
    assert (unknown.valid, unknown.code) == (False, "signature")
    assert "no key" in (unknown.reason or "") and other.fetched == []

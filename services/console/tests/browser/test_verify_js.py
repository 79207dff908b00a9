"""The browser's verifier (`static/verify.js`) in Chromium against the audit log's own formats:
the JCS vectors, the RFC 9162 proofs of the Merkle vectors, entries chained by
`mmgen.auditlog`, and heads signed and cosigned by its signers — accepted when right, refused
with the reason when a byte is wrong. No service runs: the console serves the module alone.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pymongo import MongoClient

from mmgen.auditlog.checkpoint import (
    Checkpoint,
    NoteSigner,
    SignedNote,
    parse_note,
    sign_checkpoint,
)
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.merkle import inclusion_proof, root_from_leaf_hashes
from mmgen.auditlog.receipt import Ed25519Jwk, jwks_document, sign_compact
from mmgen.console.app import build_app
from mmgen.console.settings import ConsoleSettings
from mmgen.localstack.ports import free_port
from mmgen.localstack.pytest_plugin import unique_name

VECTORS = Path(__file__).resolve().parents[4] / "libs" / "auditlog" / "tests" / "vectors"


@pytest.fixture(scope="module")
def verifier_page(browser: Any, mongo_uri: str) -> Iterator[Any]:
    """The console serving its static modules (its sessions' database is the session's
    MongoDB, under a name of its own)."""
    database = unique_name("console_js_")
    settings = ConsoleSettings(
        environment="test",
        jwks_url=None,
        log_json=False,
        log_level="WARNING",
        mongo_uri=mongo_uri,
        mongo_database=database,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/signin")  # a secure context: WebCrypto is there
        yield page
    finally:
        context.close()
        server.should_exit = True
        thread.join(10)
        with MongoClient(mongo_uri) as mongo:
            mongo.drop_database(database)


def _js(page: Any, body: str, arg: Any = None) -> Any:
    """Run `body` with `v` = the verify.js module and `arg`; return its value."""
    return page.evaluate(
        f"async (arg) => {{ const v = await import('/static/verify.js'); {body} }}", arg
    )


def test_canonical_json_matches_the_rfc_8785_vectors(verifier_page: Any) -> None:
    folder = VECTORS / "jcs" / "cyberphone-testdata"
    for source in sorted((folder / "input").glob("*.json")):
        expected = (folder / "output" / source.name).read_text(encoding="utf-8")
        got = _js(verifier_page, "return v.canonicalJson(JSON.parse(arg));", source.read_text())
        assert got == expected.rstrip("\n"), source.name


def test_inclusion_proofs_of_the_merkle_vectors_lead_to_their_roots(verifier_page: Any) -> None:
    data = json.loads((VECTORS / "merkle" / "derived_all_proofs_8_leaves.json").read_text())
    cases = [
        {**case, "leaf": data["leaf_hashes_hex"][case["leaf_index"]],
         "root": data["roots_hex"][str(case["tree_size"])]}
        for case in data["inclusion"]
    ]  # fmt: skip
    results = _js(verifier_page, """
        const out = [];
        for (const c of arg) {
          const root = await v.rootFromInclusionProof(c.leaf_index, c.tree_size,
              v.hexToBytes(c.leaf), c.proof_hex.map(v.hexToBytes));
          out.push(v.bytesToHex(root) === c.root);
          if (c.proof_hex.length) {
            const bad = c.proof_hex.map(v.hexToBytes);
            bad[0] = bad[0].map((b, i) => (i === 0 ? b ^ 1 : b));
            const wrong = await v.rootFromInclusionProof(c.leaf_index, c.tree_size,
                v.hexToBytes(c.leaf), bad);
            out.push(v.bytesToHex(wrong) !== c.root);
          }
        }
        return out;""", cases)  # fmt: skip
    assert results and all(results)


def _log(count: int) -> list[dict[str, Any]]:
    chain = ChainBuilder()
    now = datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=UTC)
    return [
        chain.append(
            event_id=f"01a2{i:028x}", producer="consent", producer_seq=i + 1,
            event_type="consent.ConsentGranted", action="consent", occurred_at=now,
            recorded_at=now, subject_id="7d0c1f0e-5a8e-4c4b-9d7c-1b2a3c4d5e6f",
            actor_id=None, actor_role=None, purpose="marketing.email",
            resource={"type": "consent", "id": "marketing.email"},
            categories=("contact", "consent"),
        ).to_json()
        for i in range(count)
    ]  # fmt: skip


def test_entries_chained_by_the_library_verify_and_a_changed_one_names_why(
    verifier_page: Any,
) -> None:
    entries = _log(5)
    log = NoteSigner.generate("mmgen.local/audit")
    witness = CosignatureSigner.generate("mmgen.local/witness")
    leaves = [bytes.fromhex(x) for x in _js(verifier_page, """
        return Promise.all(arg.map(async (e) => v.bytesToHex(await v.leafHash(v.entryBytes(e)))));
    """, entries)]  # fmt: skip
    head = Checkpoint("mmgen.local/audit", len(entries), root_from_leaf_hashes(leaves))
    signed = parse_note(sign_checkpoint(head, log))
    cosigned = SignedNote(
        signed.text, (*signed.signatures, witness.cosign(signed.text, 1_765_000_000))
    ).encode()
    proofs = {i: [h.hex() for h in inclusion_proof(leaves, i)] for i in range(len(entries))}
    config = {
        "audit_log_key": log.verifier().to_string(),
        "witness_keys": [witness.verifier().to_string()],
        "witness_quorum": 1,
    }
    run = """
        const [entry, config, note, proofs] = arg;
        const fetchJson = async (path) => path.includes("checkpoints") ? { note } :
          { leaf_index: entry.seq, tree_size: 5, hashes: proofs[entry.seq] };
        try { await v.verifyEntry(entry, config, fetchJson); return "verified"; }
        catch (e) { return `failed: ${e.message}`; }"""
    for entry in entries:
        assert _js(verifier_page, run, [entry, config, cosigned, proofs]) == "verified"

    changed = {**entries[2], "purpose": "support"}
    assert "do not match its hash" in _js(verifier_page, run, [changed, config, cosigned, proofs])
    rehashed = _js(verifier_page, """const e = arg;
        return { ...e, hash: v.bytesToHex(await v.chainHash(e)) };""", changed)  # fmt: skip
    assert "not in the signed tree" in _js(verifier_page, run, [rehashed, config, cosigned, proofs])
    unwitnessed = sign_checkpoint(head, log)
    assert "0 witness cosignature(s), 1 required" in _js(
        verifier_page, run, [entries[0], config, unwitnessed, proofs]
    )
    other_log = {
        **config,
        "audit_log_key": NoteSigner.generate("mmgen.local/audit").verifier().to_string(),
    }
    assert "no signature of the pinned log key" in _js(
        verifier_page, run, [entries[0], other_log, cosigned, proofs]
    )
    forged = cosigned.replace(f"\n{len(entries)}\n", f"\n{len(entries) + 1}\n", 1)
    assert "does not verify under the pinned log key" in _js(
        verifier_page, run, [entries[0], config, forged, proofs]
    )


def test_an_erasure_receipt_verifies_and_a_wrong_one_names_why(verifier_page: Any) -> None:
    subject = "7d0c1f0e-5a8e-4c4b-9d7c-1b2a3c4d5e6f"
    chain = ChainBuilder()
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    entries = [
        chain.append(
            event_id=f"01a3{i:028x}", producer=service, producer_seq=1,
            event_type=f"{service}.SubjectErased", action="erase", occurred_at=now,
            recorded_at=now, subject_id=subject, actor_id=None, actor_role="service",
            purpose="legal_compliance", resource=None, categories=(),
        ).to_json()
        for i, service in enumerate(("identity", "consent"))
    ]  # fmt: skip
    leaves = [bytes.fromhex(x) for x in _js(verifier_page, """
        return Promise.all(arg.map(async (e) => v.bytesToHex(await v.leafHash(v.entryBytes(e)))));
    """, entries)]  # fmt: skip
    log = NoteSigner.generate("mmgen.local/audit")
    head = Checkpoint("mmgen.local/audit", 2, root_from_leaf_hashes(leaves))
    note = sign_checkpoint(head, log)
    seed = NoteSigner.generate("retention").seed
    key = Ed25519Jwk.of(NoteSigner("retention", seed).public_key)
    payload = {
        "request_id": "r1", "subject_id": subject,
        "services": [{"service": "identity", "audit_seq": 0},
                     {"service": "consent", "audit_seq": 1}],
        "checkpoint": {"tree_size": 2, "root_hash": head.root_hash.hex(), "note": note},
    }  # fmt: skip
    header = {"alg": "EdDSA", "kid": key.kid, "typ": "mmgen-erasure-receipt+jws"}
    jws = sign_compact(json.dumps(payload).encode(), seed, header)
    config = {"audit_log_key": log.verifier().to_string(), "witness_keys": [], "witness_quorum": 0}
    proofs = {i: [h.hex() for h in inclusion_proof(leaves, i)] for i in range(2)}
    run = """
        const [jws, jwks, config, entries, proofs] = arg;
        const fetchJson = async (path) => {
          const seq = Number(path.match(/(?:entries\\/|seq=)(\\d+)/)[1]);
          return path.includes("proofs") ? { hashes: proofs[seq] } : entries[seq];
        };
        try { await v.verifyReceipt(jws, jwks, config, fetchJson); return "verified"; }
        catch (e) { return `failed: ${e.message}`; }"""
    jwks = jwks_document([key])
    assert _js(verifier_page, run, [jws, jwks, config, entries, proofs]) == "verified"

    other = {**payload, "subject_id": "someone-else"}
    forged = sign_compact(json.dumps(other).encode(), seed, header)
    assert "not identity's erasure of this subject" in _js(
        verifier_page, run, [forged, jwks, config, entries, proofs]
    )
    head_part, body, signature = jws.split(".")
    tampered = f"{head_part}.{body[:-2]}AA.{signature}"
    assert "signature does not verify" in _js(
        verifier_page, run, [tampered, jwks, config, entries, proofs]
    )

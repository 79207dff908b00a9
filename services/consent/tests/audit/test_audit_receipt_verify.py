"""`mmgen-verify receipt verify`'s check against the real audit API (in-process): a receipt
whose erasures are in the log passes; one naming another entry, signed by another key, or
whose checkpoint lacks the required witnesses fails."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.receipt import (
    ErasureReceipt,
    ReceiptCheckpoint,
    ReceiptService,
    ReceiptSigner,
    jwks_document,
    parse_jwks,
)
from mmgen.consent.audit import AuditComponent, build_audit
from mmgen.platform import ServiceSettings, create_app
from mmgen.platform.auth import SigningKey, StaticKeySet, TokenVerifier, issue_token
from mmgen.verifier.client import AuditApi
from mmgen.verifier.keys import TrustedKeys
from mmgen.verifier.receipts import check_receipt

SUBJECT = str(uuid.uuid4())
T0 = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)


@pytest.fixture
async def component(audit_settings: Any, mongo_db: Any) -> AuditComponent:
    audit = build_audit(audit_settings, mongo_db, registry=CollectorRegistry())
    await audit.store.ensure_indexes()
    return audit


@pytest.fixture
async def api(component: AuditComponent) -> AsyncIterator[AuditApi]:
    key = SigningKey.generate()
    app = create_app(
        ServiceSettings(environment="test", jwks_url=None, log_json=False, service_name="consent"),
        title="audit-test",
        version="0",
        routers=[component.router],
        token_verifier=TokenVerifier(StaticKeySet.of(key), audience="consent"),
        denial_recorder=component.denial_recorder,
        metrics_registry=CollectorRegistry(),
    )
    token = issue_token(key, subject=str(uuid.uuid4()), role="compliance", amr=["pwd", "otp"])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://consent",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        yield AuditApi(client)


async def erasures(component: AuditComponent, item: Any) -> dict[str, int]:
    """Noise, then identity's and consent's SubjectErased of SUBJECT; their seqs."""
    await component.store.append([item(producer_seq=1), item(producer_seq=2)])
    seqs = {}
    for n, producer in enumerate(("identity", "consent")):
        result = await component.store.append(
            [
                item(
                    producer=producer,
                    producer_seq=10 + n,
                    event_type=f"{producer}.SubjectErased",
                    action="erase",
                    subject_id=SUBJECT,
                    actor_id=None,
                    actor_role=None,
                    purpose=None,
                )
            ]
        )
        seqs[producer] = result.entries[0].seq
    return seqs


def receipt(seqs: dict[str, int], record: Any) -> ErasureReceipt:
    return ErasureReceipt(
        request_id="req-1",
        subject_id=SUBJECT,
        requested_at=T0 - timedelta(days=1),
        verified_at=T0,
        services=tuple(
            ReceiptService(
                service=name,
                keys_shredded=1,
                records_deleted={},
                categories_held=(),
                audit_seq=seq,
            )
            for name, seq in seqs.items()
        ),
        held=(),
        checkpoint=ReceiptCheckpoint(record.tree_size, record.root_hash, record.cosigned_note),
    )


async def test_receipt_checked_against_the_served_log(
    component: AuditComponent, api: AuditApi, item: Any
) -> None:
    seqs = await erasures(component, item)
    record = await component.checkpointer.sign_now()
    assert record is not None
    retention = ReceiptSigner(bytes(range(32)))
    keys = parse_jwks(jwks_document([retention.jwk]))
    trusted = TrustedKeys(component.checkpointer.verifier)

    good = await check_receipt(retention.sign(receipt(seqs, record)), keys, trusted, api)
    assert good.valid, good.reason

    wrong_entry = receipt({"identity": seqs["identity"], "consent": 0}, record)
    refused = await check_receipt(retention.sign(wrong_entry), keys, trusted, api)
    assert (refused.valid, refused.code) == (False, "evidence")

    impostor = ReceiptSigner(bytes(32))
    forged = await check_receipt(impostor.sign(receipt(seqs, record)), keys, trusted, api)
    assert (forged.valid, forged.code) == (False, "signature")

    witness = CosignatureSigner.generate("witness.test/w1")
    needs_witness = TrustedKeys(component.checkpointer.verifier, (witness.verifier(),), 1)
    unwitnessed = await check_receipt(
        retention.sign(receipt(seqs, record)), keys, needs_witness, api
    )
    assert (unwitnessed.valid, unwitnessed.code) == (False, "evidence")
    assert "cosignatures" in (unwitnessed.reason or "")

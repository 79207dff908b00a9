"""Signed erasure receipts and the key set that verifies them.

A receipt is signed on request from the concluded erasure and the audit log's latest signed
head (`AuditLogHeads`), so it always carries a head that covers every `audit_seq` it names;
before such a head exists, there is no receipt yet (`ReceiptNotAvailableError`, retried by the
caller). Ed25519 signatures are deterministic: the same request and head give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmgen.auditlog.receipt import Ed25519Jwk, ReceiptSigner, jwks_document
from mmgen.retention.domain.errors import ReceiptNotAvailableError, ServiceUnreachableError
from mmgen.retention.domain.receipts import build_receipt
from mmgen.retention.service_layer.ports import AuditLogHeads
from mmgen.retention.service_layer.requests import RequestBook


class Receipts:
    def __init__(
        self,
        *,
        book: RequestBook,
        heads: AuditLogHeads,
        signer: ReceiptSigner,
        retired: Sequence[Ed25519Jwk] = (),
    ) -> None:
        self.book = book
        self.heads = heads
        self.signer = signer
        self.retired = tuple(retired)

    async def receipt(self, request_id: str) -> str:
        """The compact JWS of the request's receipt."""
        request = await self.book.load(request_id)
        try:
            checkpoint = await self.heads.latest()
        except ServiceUnreachableError as exc:
            raise ReceiptNotAvailableError(
                f"the audit log's signed head is unavailable ({exc.reason}); retry shortly"
            ) from exc
        return self.signer.sign(build_receipt(request, checkpoint))

    def jwks(self) -> dict[str, Any]:
        """`/.well-known/jwks.json`: the current key, then retired ones still verifying."""
        return jwks_document([self.signer.jwk, *self.retired])

"""The erasure receipt's payload, from a concluded request and a signed audit-log head.

A receipt exists for an erasure that is ``verified``, or ``partially_completed`` (then its
``held`` list names each hold and why; ``verified_at`` is when everything outside the holds
was checked). Each service appears with the counts of its ``SubjectErased`` for the last
order and that entry's ``audit_seq``; the checkpoint must cover every one of them, or there
is no receipt yet (the next signed head will). The format and its verification live in
``mmgen.auditlog.receipt``, so that the CLI checks receipts without this service's code.
"""

from __future__ import annotations

from mmgen.auditlog.entry import format_timestamp
from mmgen.auditlog.receipt import (
    ErasureReceipt,
    ReceiptCheckpoint,
    ReceiptHold,
    ReceiptService,
)
from mmgen.retention.domain.errors import ReceiptNotAvailableError
from mmgen.retention.domain.requests import PrivacyRequest, RequestStatus


def build_receipt(request: PrivacyRequest, checkpoint: ReceiptCheckpoint) -> ErasureReceipt:
    if request.request_type != "erasure" or request.status not in (
        RequestStatus.verified,
        RequestStatus.partially_completed,
    ):
        raise ReceiptNotAvailableError(
            f"privacy request {request.request_id} is a {request.status.value} "
            f"{request.request_type} request: only a verified or partially completed erasure "
            "has a receipt"
        )
    order = request.last_order
    acks = request.acknowledgements_for_last_order()
    assert order is not None and request.received_at is not None
    assert request.concluded_at is not None
    missing = sorted(set(order.services) - set(acks))
    if missing:  # a concluded request has them all; a receipt never papers over a gap
        raise ReceiptNotAvailableError(f"no acknowledgement from {', '.join(missing)}")
    highest = max(ack.audit_seq for ack in acks.values())
    if highest >= checkpoint.tree_size:
        raise ReceiptNotAvailableError(
            f"the latest signed audit-log head ({checkpoint.tree_size} entries) does not cover "
            f"audit seq {highest} yet; retry shortly"
        )
    return ErasureReceipt(
        request_id=request.request_id,
        subject_id=request.subject_id,
        requested_at=format_timestamp(request.received_at),
        verified_at=format_timestamp(request.concluded_at),
        services=tuple(
            ReceiptService(
                service=service,
                keys_shredded=ack.keys_shredded,
                records_deleted=dict(ack.records_deleted),
                categories_held=tuple(sorted(set(ack.categories_held))),
                audit_seq=ack.audit_seq,
            )
            for service, ack in sorted(acks.items())
        ),
        held=tuple(
            ReceiptHold(
                category=h.category,
                legal_basis=h.legal_basis,
                hold_id=h.hold_id,
                until=None if h.until is None else format_timestamp(h.until),
            )
            for h in request.held
        ),
        checkpoint=checkpoint,
    )

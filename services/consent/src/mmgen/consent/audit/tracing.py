"""Spans of the audit projector: one per appended event, in the trace of the request that made it.

The projector appends whole batches in one transaction, so a batch has no single parent; each
event gets a consumer span of its own, a child of the producer's span from its Kafka headers
(the relay's `traceparent`), lasting from the batch's fetch to its commit. A request's trace
thus ends where its events entered the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.trace import SpanKind

from mmgen.events.tracing import extract_context, tracer


def trace_appended(records: Iterable[Any], *, group_id: str, started_ns: int) -> None:
    """End a consumer span for each record the audit log now holds (started at its fetch)."""
    for record in records:
        span = tracer().start_span(
            f"{record.topic} process",
            context=extract_context(record.headers),
            kind=SpanKind.CONSUMER,
            start_time=started_ns,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "messaging.consumer.group.name": group_id,
                "messaging.operation.name": "audit append",
            },
        )
        span.end()

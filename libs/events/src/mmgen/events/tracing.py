"""W3C trace context (`traceparent`) carried in Kafka headers, so one trace spans HTTP → store
→ relay → every consumer.

Only the OpenTelemetry API is used: without an SDK configured every call is a cheap no-op,
and a service that installs the SDK (platform kit) gets real spans with no change here.
The W3C propagator is used explicitly rather than the global one, so the header is
`traceparent` whatever `OTEL_PROPAGATORS` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_propagator = TraceContextTextMapPropagator()

KafkaHeaders = list[tuple[str, bytes]]


def tracer() -> trace.Tracer:
    """The kernel's tracer (looked up per call so a provider installed later is honoured)."""
    return trace.get_tracer("mmgen.events")


def current_traceparent(context: Context | None = None) -> str | None:
    """The `traceparent` of the active span (or of `context`), None outside any valid span.

    Stored in the envelope at append time, so the relay (another task, later) can continue the
    trace of the request that appended the event.
    """
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier.get(TRACEPARENT)


def context_from_traceparent(traceparent: str | None) -> Context:
    """A context whose parent is the span named by `traceparent` (empty context if None/bad)."""
    if not traceparent:
        return Context()
    return _propagator.extract({TRACEPARENT: traceparent})


def inject_headers(headers: KafkaHeaders, context: Context | None = None) -> KafkaHeaders:
    """Append `traceparent` (and `tracestate` if any) of the active span to Kafka headers.

    Any trace headers already present are replaced, so a message never carries two parents.
    """
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    kept = [(k, v) for k, v in headers if k not in (TRACEPARENT, TRACESTATE)]
    kept.extend((k, v.encode()) for k, v in carrier.items())
    return kept


def header_value(headers: Iterable[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """The last value of header `name`, decoded as UTF-8 (Kafka headers may repeat)."""
    found: str | None = None
    for key, value in headers or ():
        if key == name and value is not None:
            found = value.decode("utf-8", errors="replace")
    return found


def extract_context(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, str] | None,
) -> Context:
    """The producer's trace context from Kafka headers (a list of pairs, or a str mapping).

    A consumer starts its span with this as parent, so its work lands in the producer's trace.
    """
    if headers is None:
        return Context()
    if isinstance(headers, Mapping):
        carrier = {k: str(v) for k, v in headers.items() if k in (TRACEPARENT, TRACESTATE)}
    else:
        pairs = list(headers)
        carrier = {}
        for name in (TRACEPARENT, TRACESTATE):
            value = header_value(pairs, name)
            if value is not None:
                carrier[name] = value
    if TRACEPARENT not in carrier:
        return Context()
    return _propagator.extract(carrier)

"""OpenTelemetry for services: one tracer provider per process, FastAPI server spans, and the
W3C `traceparent` helpers the event kernel uses to carry a trace through Kafka headers.

Spans are exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces
variant) is set; otherwise they are still created, so logs carry trace ids and `traceparent`
still propagates, but go nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mmgen.platform.settings import OtelSettings

logger = logging.getLogger("mmgen.platform.telemetry")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_propagator = TraceContextTextMapPropagator()
#: Probes and scrapes make no spans (they would drown the traces that matter).
EXCLUDED_URLS = "healthz,readyz,metrics"


def configure_tracing(service_name: str, otel: OtelSettings | None = None) -> TracerProvider:
    """Install the process's SDK tracer provider once; later calls return the same one.

    One process runs one service in production; in tests several apps share the first
    provider, which is harmless since spans carry the route, not only the service name.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    otel = otel or OtelSettings()
    resource = Resource.create({"service.name": otel.service_name or service_name})
    provider = TracerProvider(resource=resource)
    if otel.export_enabled:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger.info("exporting traces over OTLP/HTTP")
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """Server spans for every request, with W3C `traceparent` extraction."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


def tracer(name: str = "mmgen") -> trace.Tracer:
    return trace.get_tracer(name)


def current_traceparent() -> str | None:
    """The `traceparent` of the active span, or None outside a trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def inject_trace_context(
    carrier: MutableMapping[str, str] | None = None,
) -> MutableMapping[str, str]:
    """Write `traceparent` (and `tracestate`) of the active span into `carrier`."""
    target: MutableMapping[str, str] = carrier if carrier is not None else {}
    _propagator.inject(target)
    return target


def extract_trace_context(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context a `traceparent` carrier describes; start spans with `context=` it."""
    return _propagator.extract(dict(carrier))


def kafka_trace_headers() -> list[tuple[str, bytes]]:
    """Kafka record headers carrying the active trace (empty outside a trace)."""
    return [(key, value.encode("ascii")) for key, value in inject_trace_context({}).items()]


def context_from_kafka_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Sequence[tuple[str, bytes]] | None,
) -> otel_context.Context:
    """The trace context carried in a Kafka record's headers (a fresh one if none)."""
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key in (TRACEPARENT, TRACESTATE) and value is not None:
            carrier[key] = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return extract_trace_context(carrier)


def trace_context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    """The context of a stored `traceparent` (e.g. the event envelope's member)."""
    return extract_trace_context({TRACEPARENT: traceparent} if traceparent else {})

"""traceparent into and out of Kafka headers (W3C), with the OpenTelemetry SDK in memory."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mmgen.events.tracing import (
    context_from_traceparent,
    current_traceparent,
    extract_context,
    header_value,
    inject_headers,
    tracer,
)


def test_headers_carry_the_active_span_to_a_child_span(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("producer") as producer:
        headers = inject_headers([("event_type", b"x.Y"), ("traceparent", b"stale")])
        traceparent = current_traceparent()
    assert [k for k, _ in headers].count("traceparent") == 1
    assert header_value(headers, "traceparent") == traceparent
    assert header_value(headers, "event_type") == "x.Y"
    with tracer().start_as_current_span("consumer", context=extract_context(headers)):
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    consumer = finished["consumer"]
    assert consumer.context.trace_id == producer.get_span_context().trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.get_span_context().span_id


def test_traceparent_string_round_trips(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("request") as request:
        traceparent = current_traceparent()
    assert traceparent is not None
    ctx = context_from_traceparent(traceparent)
    assert trace.get_current_span(ctx).get_span_context().trace_id == (
        request.get_span_context().trace_id
    )
    # The header mapping a consumer gets yields the same remote parent: trace and span ids.
    extracted = trace.get_current_span(extract_context({"traceparent": traceparent}))
    parent = extracted.get_span_context()
    assert parent.is_valid and parent.is_remote
    assert (parent.trace_id, parent.span_id) == (
        request.get_span_context().trace_id,
        request.get_span_context().span_id,
    )


def test_no_trace_means_no_header_and_an_empty_context() -> None:
    assert current_traceparent() is None
    assert inject_headers([("a", b"1")]) == [("a", b"1")]
    assert not trace.get_current_span(extract_context([("a", b"1")])).get_span_context().is_valid
    assert not trace.get_current_span(context_from_traceparent(None)).get_span_context().is_valid
    assert (
        not trace.get_current_span(context_from_traceparent("garbage")).get_span_context().is_valid
    )

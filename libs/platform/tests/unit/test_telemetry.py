"""Trace context helpers (W3C traceparent through Kafka headers) and JSON log lines."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from mmgen.platform.logs import JsonFormatter, configure_logging
from mmgen.platform.telemetry import (
    configure_tracing,
    context_from_kafka_headers,
    current_traceparent,
    inject_trace_context,
    kafka_trace_headers,
    trace_context_from_traceparent,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_configure_tracing_installs_one_sdk_provider() -> None:
    provider = configure_tracing("unit-test")
    assert isinstance(provider, TracerProvider)
    assert configure_tracing("another") is provider


def test_outside_a_trace_nothing_is_injected() -> None:
    assert current_traceparent() is None
    assert kafka_trace_headers() == []


def test_traceparent_survives_a_kafka_hop() -> None:
    tracer = configure_tracing("unit-test").get_tracer("test")
    with tracer.start_as_current_span(
        "http request", context=trace_context_from_traceparent(TRACEPARENT)
    ) as request:
        headers = kafka_trace_headers()
        assert dict(headers)["traceparent"].decode().split("-")[1] == TRACE_ID
        outgoing = current_traceparent()
    # What is sent names the request's own span (not the caller's) as the parent.
    request_span = format(request.get_span_context().span_id, "016x")
    assert outgoing == dict(headers)["traceparent"].decode() == f"00-{TRACE_ID}-{request_span}-01"
    # The consumer side: a span started from the headers continues the same trace.
    consumer_context = context_from_kafka_headers([*headers, ("other", b"x")])
    with tracer.start_as_current_span("consume", context=consumer_context) as span:
        assert format(span.get_span_context().trace_id, "032x") == TRACE_ID
        assert inject_trace_context()["traceparent"].split("-")[1] == TRACE_ID


def test_json_log_lines_carry_trace_and_span_ids() -> None:
    stream = io.StringIO()
    handler = configure_logging("unit-svc", stream=stream)
    try:
        logger = logging.getLogger("mmgen.test.logs")
        tracer = configure_tracing("unit-test").get_tracer("test")
        with tracer.start_as_current_span(
            "work", context=trace_context_from_traceparent(TRACEPARENT)
        ) as span:
            logger.info("doing work", extra={"project_id": "p1"})
            span_id = format(span.get_span_context().span_id, "016x")
        logger.info("outside")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = next(line for line in lines if line["message"] == "doing work")
    assert inside["trace_id"] == TRACE_ID
    assert inside["span_id"] == span_id
    assert inside["service"] == "unit-svc"
    assert inside["project_id"] == "p1"
    assert inside["level"] == "INFO"
    outside = next(line for line in lines if line["message"] == "outside")
    assert "trace_id" not in outside


def test_exceptions_are_logged_as_one_line() -> None:
    formatter = JsonFormatter("svc")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    line = formatter.format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]
    assert trace.get_current_span().get_span_context().is_valid is False

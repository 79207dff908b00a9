"""Fixtures of the relay / consumer / topics tests (events part B): tracing capture, clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Group joins on the local broker wait about half the session timeout (INFRA.md).
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}

_exporter = InMemorySpanExporter()


def _install_exporter() -> None:
    """Attach the in-memory exporter once per process, whoever installed the SDK provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if not getattr(provider, "_mmgen_events_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        provider._mmgen_events_test_exporter = True  # type: ignore[attr-defined]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test (the exporter is process-wide; cleared around each test)."""
    _install_exporter()
    _exporter.clear()
    yield _exporter
    _exporter.clear()

"""Fixtures of the relay / consumer / topics tests (events part B): tracing capture, clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mmgen.events.envelope import Envelope, Resource

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


def _make_envelope(
    seq: int | None = None,
    *,
    stream_id: str | None = None,
    stream_version: int = 1,
    subject_id: str | None = None,
    producer: str = "test",
    data: dict[str, object] | None = None,
    traceparent: str | None = None,
) -> Envelope:
    """A valid envelope with random ids (tests never share ids)."""
    stream = stream_id or f"thing-{uuid.uuid4().hex[:12]}"
    return Envelope(
        event_type=f"{producer}.ThingHappened",
        schema_version=1,
        producer=producer,
        producer_seq=seq,
        stream_id=stream,
        stream_version=stream_version,
        subject_id=subject_id,
        action="create",
        resource=Resource(type="thing", id=stream),
        data=data or {},
        traceparent=traceparent,
    )


@pytest.fixture
def make_envelope() -> Any:
    """Factory of valid envelopes with random ids (see `_make_envelope`)."""
    return _make_envelope

"""Issue 16, acceptance: one trace id spans a request's every hop.

projects, profiles and consent run in this process (so one in-memory span exporter sees all
their spans), on the session's real broker and database, under one topic prefix. A request
arrives at projects carrying a gateway's `traceparent`; the project it creates is appended to
projects' event store, published by its relay on `projects.events`, then consumed by profiles'
inbox (which learns the project's members from it) and by consent's audit projector (which
appends it to the audit log). Every one of those spans must carry the gateway's trace id, each
a descendant of the one before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mmgen.consent.entrypoints.app import build_app as consent_app
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import ServiceSettings
from mmgen.profiles.entrypoints.app import build_app as profiles_app
from mmgen.profiles.settings import ProfilesSettings
from mmgen.projects.entrypoints.app import build_app as projects_app
from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.testing import Tokens, eventually, running_app, service_settings

DEADLINE_S = 45.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished in this process while the test runs (the SDK provider is global:
    an earlier app may have installed it, so the exporter is added to whichever one is set)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays on the provider, exporting nothing from now on


@pytest.fixture
async def apps(infra: Any) -> AsyncIterator[dict[str, Any]]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = Tokens.generate()

    def settings(cls: type[ServiceSettings], **extra: Any) -> Any:
        made = service_settings(cls, infra, topic_prefix=prefix, **extra)
        groups = {"consumer_group": f"{prefix}{made.service_name}-inbox"}
        if isinstance(made, ConsentSettings):
            groups["audit_consumer_group"] = f"{prefix}consent-audit"
        return made.model_copy(update=groups)

    built = {
        "projects": projects_app(settings(ProjectsSettings), key_set=tokens.key_set()),
        "profiles": profiles_app(settings(ProfilesSettings), key_set=tokens.key_set()),
        "consent": consent_app(
            settings(ConsentSettings, audit_checkpoint_every_seconds=1.0),
            key_set=tokens.key_set(),
        ),
    }
    async with AsyncExitStack() as stack:
        clients = {
            name: (await stack.enter_async_context(running_app(app)))[1]
            for name, app in built.items()
        }
        yield {"tokens": tokens, "clients": clients, "apps": built}


class Found(list[ReadableSpan]):
    """Spans whose repr names them (what `eventually` shows when the trace stays incomplete)."""

    def __repr__(self) -> str:
        return repr(
            sorted(
                f"{s.name} [{(s.attributes or {}).get('messaging.consumer.group.name', '')}]"
                for s in self
            )
        )


def by_id(spans: Sequence[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans if span.context is not None}


def descends_from(
    span: ReadableSpan, ancestor: ReadableSpan, index: dict[int, ReadableSpan]
) -> bool:
    """Whether `ancestor` is on `span`'s parent chain (within this process's spans)."""
    assert ancestor.context is not None
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        found = index.get(parent.span_id)
        parent = found.parent if found is not None else None
    return False


async def test_one_trace_spans_http_store_relay_kafka_and_both_consumers(
    spans: InMemorySpanExporter, apps: dict[str, Any]
) -> None:
    tokens: Tokens = apps["tokens"]
    projects = apps["clients"]["projects"]
    prefix = apps["apps"]["projects"].state.settings.topic_prefix
    topic = f"{prefix}projects.events"

    # The gateway's span: the request enters projects as its child.
    gateway = trace.get_tracer("gateway").start_span("gateway", kind=SpanKind.SERVER)
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(gateway))
    trace_id = gateway.get_span_context().trace_id
    _, headers = tokens.headers("client")
    made = await projects.post(
        "/projects",
        json={"title": f"Launch {uuid.uuid4().hex[:6]}", "requirements": "Two hosts"},
        headers={**headers, **carrier},
    )
    gateway.end()
    assert made.status_code == 201, made.text

    def in_trace() -> Found:
        return Found(
            s
            for s in spans.get_finished_spans()
            if s.context is not None and s.context.trace_id == trace_id
        )

    def named(found: Sequence[ReadableSpan], name: str, group: str | None = None) -> list[Any]:
        return [
            s
            for s in found
            if s.name == name
            and (
                group is None or (s.attributes or {}).get("messaging.consumer.group.name") == group
            )
        ]

    profiles_group = "profiles-inbox"  # the inbox subscription's name
    audit_group = f"{prefix}consent-audit"

    async def probe() -> Found:
        return in_trace()

    found = await eventually(
        probe,
        until=lambda found: bool(
            named(found, f"{topic} process", profiles_group)
            and named(found, f"{topic} process", audit_group)
        ),
        timeout=DEADLINE_S,
    )
    index = by_id(found)
    server = [s for s in found if s.kind == SpanKind.SERVER and s.name.startswith("POST /projects")]
    append = named(found, "events append")
    publish = named(found, f"{topic} publish")
    profiles_span = named(found, f"{topic} process", profiles_group)
    audit_span = named(found, f"{topic} process", audit_group)
    assert server, sorted(s.name for s in found)
    assert append, sorted(s.name for s in found)
    assert publish, sorted(s.name for s in found)
    (gateway_span,) = [s for s in found if s.context.span_id == gateway.get_span_context().span_id]
    # each hop a descendant of the one before it, under the gateway's span
    assert descends_from(server[0], gateway_span, index)
    assert any(descends_from(a, server[0], index) for a in append)
    assert any(descends_from(p, a, index) for p in publish for a in append)
    assert any(descends_from(c, p, index) for c in profiles_span for p in publish)
    assert any(descends_from(c, p, index) for c in audit_span for p in publish)

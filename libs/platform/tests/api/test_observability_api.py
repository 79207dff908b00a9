"""Metrics per app, JSON logs with the request's trace id, stable OpenAPI operation ids."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from mmgen.platform import ConfigurationError, PlatformApp, ServiceSettings, create_app
from mmgen.platform.logs import configure_logging

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "http_requests":
            for sample in family.samples:
                if sample.name == "http_requests_total":
                    labels = sample.labels
                    counts[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counts


async def test_metrics_count_requests_by_route_template_and_status(
    make_app: Callable[..., PlatformApp],
    serve: Any,
    token: Callable[..., str],
    auth: Callable[[str], dict[str, str]],
) -> None:
    async with serve(make_app()) as client, serve(make_app()) as other:
        headers = auth(token())
        for widget_id in (1, 2, 3):
            assert (await client.get(f"/widgets/{widget_id}", headers=headers)).status_code == 200
        assert (await client.get("/widgets/4")).status_code == 401
        assert (await client.get("/random/path/123")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
        response = await client.get("/metrics")
        other_metrics = await other.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = request_counts(response.text)
    assert counts[("GET", "/widgets/{widget_id}", "200")] == 3
    assert counts[("GET", "/widgets/{widget_id}", "401")] == 1
    assert counts[("GET", "/boom", "500")] == 1
    assert counts[("GET", "<unmatched>", "404")] == 1
    assert not any(route == "/widgets/1" for _, route, _ in counts)
    assert "http_request_duration_seconds_bucket" in response.text
    # A second app in the same process keeps its own registry.
    assert ("GET", "/widgets/{widget_id}", "200") not in request_counts(other_metrics.text)


async def test_log_lines_inside_a_request_carry_its_trace_id(
    make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    app = make_app()
    stream = io.StringIO()
    configure_logging("platform-test", stream=stream)
    try:
        async with serve(app) as client:
            response = await client.get("/log", headers={"traceparent": TRACEPARENT})
            failed = await client.get("/boom", headers={"traceparent": TRACEPARENT})
    finally:
        configure_logging("platform-test")
    assert response.status_code == 200
    assert failed.status_code == 500
    assert failed.json()["trace_id"] == TRACE_ID
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = next(line for line in lines if line.get("marker") == "log-test")
    assert inside["message"] == "inside the request"
    assert inside["trace_id"] == TRACE_ID
    assert len(inside["span_id"]) == 16
    assert inside["service"] == "platform-test"
    access = next(line for line in lines if line.get("route") == "/log")
    assert access["trace_id"] == TRACE_ID
    assert access["status"] == 200
    # The 500 is logged server-side with its traceback and trace id (and only there).
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["trace_id"] == TRACE_ID
    assert "hunter2" in error["exception"]


async def test_operation_ids_are_route_names(
    make_app: Callable[..., PlatformApp], serve: Any
) -> None:
    async with serve(make_app()) as client:
        spec = (await client.get("/openapi.json")).json()
    operation_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"get_widget", "read_subject", "healthz", "readyz", "metrics"} <= operation_ids
    read_subject = spec["paths"]["/subjects/{subject_id}"]["get"]
    [purpose] = [p for p in read_subject["parameters"] if p["name"] == "X-Purpose"]
    # The gateway learns which purposes the route accepts from the header's schema.
    assert purpose["in"] == "header" and purpose.get("required", False) is False
    assert purpose["schema"]["enum"] == ["project_execution", "support", "legal_compliance"]
    assert (
        "Accepted here: `project_execution`, `support`, `legal_compliance`"
        in (purpose["description"])
    )
    assert read_subject["security"] == [{"HTTPBearer": []}]


def test_duplicate_operation_ids_are_refused_at_start_up() -> None:
    first, second = APIRouter(), APIRouter()

    @first.get("/a", name="list_things")
    async def a() -> None: ...

    @second.get("/b", name="list_things")
    async def b() -> None: ...

    with pytest.raises(ConfigurationError, match="list_things"):
        create_app(
            ServiceSettings(environment="test"), title="t", version="1", routers=[first, second]
        )


async def test_one_server_span_per_request_named_by_route_and_continuing_the_caller(
    make_app: Callable[..., PlatformApp],
    serve: Any,
    token: Callable[..., str],
    auth: Callable[[str], dict[str, str]],
) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from mmgen.platform.telemetry import configure_tracing

    exporter = InMemorySpanExporter()
    configure_tracing("platform-test").add_span_processor(SimpleSpanProcessor(exporter))
    async with serve(make_app()) as client:
        headers = {**auth(token()), "traceparent": TRACEPARENT}
        assert (await client.get("/widgets/9", headers=headers)).status_code == 200
        assert (await client.get("/boom", headers={"traceparent": TRACEPARENT})).status_code == 500
        assert (
            await client.get("/healthz", headers={"traceparent": TRACEPARENT})
        ).status_code == 200
    exporter.shutdown()
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and format(s.context.trace_id, "032x") == TRACE_ID
    ]
    assert sorted(s.name for s in spans) == ["GET /boom", "GET /widgets/{widget_id}"]
    boom = next(s for s in spans if s.name == "GET /boom")
    assert boom.status.status_code is StatusCode.ERROR

"""OTLP export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, an app built with `create_app` sends its
server spans over OTLP/HTTP (protobuf POSTs to `<endpoint>/v1/traces`).

The receiver is a plain HTTP server on 127.0.0.1 that records what it is sent. The app runs
in a child interpreter: the tracer provider is installed once per process and reads the
`OTEL_*` variables then, so a fresh process is the only honest way to test that start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACE_ID = "5b8efff798038103d269b633813fc60c"
TRACEPARENT = f"00-{TRACE_ID}-eee19b7ec3c1b174-01"

# The child: a platform app with one route, one request carrying a traceparent, then a
# flush of the provider `create_app` installed (the batch processor would wait 5 s).
CHILD = textwrap.dedent(
    f"""
    import asyncio

    import httpx
    from fastapi import APIRouter
    from opentelemetry import trace

    from mmgen.platform import ServiceSettings, create_app

    router = APIRouter()

    @router.get("/things/{{thing_id}}", name="get_thing")
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {{"thing_id": thing_id}}

    app = create_app(
        ServiceSettings(environment="test", service_name="otlp-probe", jwks_url=None),
        title="otlp probe",
        version="0.0.1",
        routers=[router],
    )

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/things/7", headers={{"traceparent": "{TRACEPARENT}"}})
            assert response.status_code == 200, response.text
            assert (await c.get("/healthz")).status_code == 200

    asyncio.run(main())
    provider = trace.get_tracer_provider()
    assert provider.force_flush(10_000), "spans were not flushed"
    provider.shutdown()
    """
)


@dataclass
class Received:
    path: str
    content_type: str
    body: bytes


@dataclass
class OtlpReceiver:
    """Records every POST; answers like an OTLP/HTTP collector (200, empty response)."""

    url: str
    posts: list[Received] = field(default_factory=list)

    def spans(self, path: str = "/v1/traces") -> list[tuple[str, str, str]]:
        """(service.name, span name, trace id hex) of every span POSTed to `path`."""
        found = []
        for post in self.posts:
            if post.path != path:
                continue
            request = ExportTraceServiceRequest.FromString(post.body)
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            (attributes.get("service.name", ""), span.name, span.trace_id.hex())
                        )
        return found


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    posts: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(Received(self.path, self.headers.get("Content-Type", ""), body))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OtlpReceiver(f"http://127.0.0.1:{server.server_address[1]}", posts)
    finally:
        server.shutdown()
        server.server_close()


def run_app(env: dict[str, str]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_server_spans_are_exported_to_the_otlp_endpoint(receiver: OtlpReceiver) -> None:
    run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "otlp-test"})

    assert receiver.posts, "nothing was POSTed to the OTLP endpoint"
    assert {p.path for p in receiver.posts} == {"/v1/traces"}
    assert all(p.content_type == "application/x-protobuf" for p in receiver.posts)
    spans = receiver.spans()
    # The request's server span, in the caller's trace, named by its route template, under
    # the service name from OTEL_SERVICE_NAME; probes make no spans.
    assert ("otlp-test", "GET /things/{thing_id}", TRACE_ID) in spans
    assert not any("healthz" in name for _, name, _ in spans)


def test_the_traces_endpoint_variable_is_used_as_given(receiver: OtlpReceiver) -> None:
    run_app({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{receiver.url}/custom/traces"})

    spans = receiver.spans("/custom/traces")
    # Without OTEL_SERVICE_NAME the resource names the service from its settings.
    assert ("otlp-probe", "GET /things/{thing_id}", TRACE_ID) in spans


def test_nothing_is_exported_when_the_sdk_is_disabled(receiver: OtlpReceiver) -> None:
    run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SDK_DISABLED": "true"})

    assert receiver.posts == []

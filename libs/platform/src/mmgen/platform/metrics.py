"""Prometheus metrics on a registry per app, so several apps in one process never clash.

Requests are counted and timed by route template (`/projects/{project_id}`, never the raw
path, which would explode the label space) and status; unmatched paths share one label.
The same middleware writes one access log line per request (probes excluded). Each app's
registry also carries the process and platform collectors (CPU, memory, file descriptors,
Python version) and `mmgen_build_info` (service and version), so one scrape tells what runs.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("mmgen.platform.access")

UNMATCHED_ROUTE = "<unmatched>"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def register_process_metrics(registry: CollectorRegistry, service: str, version: str) -> None:
    """Process and platform collectors and `mmgen_build_info` on `registry`.

    A registry that has them already (the global one, or a second app on a shared registry)
    keeps the ones it has: registering a series twice is refused, and that refusal is all.
    """
    for register in (
        lambda: ProcessCollector(registry=registry),
        lambda: PlatformCollector(registry=registry),
        lambda: Info("mmgen_build", "The running service and its version.", registry=registry).info(
            {"service": service, "version": version, "python": platform.python_version()}
        ),
    ):
        with contextlib.suppress(ValueError):  # "Duplicated timeseries in CollectorRegistry"
            register()


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.in_flight_now = Gauge(
            "http_requests_in_flight",
            "HTTP requests being served now, by method.",
            ["method"],
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.denials = Counter(
            "access_denials",
            "Refused requests (401/403), each one, by method, route template, status, problem "
            "code and caller (anonymous: no or an invalid token).",
            ["method", "route", "status", "code", "caller"],
            registry=self.registry,
        )
        self.in_flight = Counter(
            "http_requests_started",
            "HTTP requests started (compare with http_requests_total for requests in flight).",
            ["method"],
            registry=self.registry,
        )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        status = 500
        started = time.perf_counter()
        self.metrics.in_flight.labels(method).inc()
        in_flight = self.metrics.in_flight_now.labels(method)
        in_flight.inc()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            in_flight.dec()
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route, str(status)).observe(elapsed)
            if scope.get("path") not in QUIET_PATHS:
                access_logger.info(
                    "request served",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", name="metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        registry: CollectorRegistry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router

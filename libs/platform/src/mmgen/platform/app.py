"""The app factory: a FastAPI app with the platform's conventions already in place.

`create_app` gives every service the same edges: problem+json for every error, body-size
limit, `/healthz`, `/readyz`, `/metrics`, JSON logs with trace ids, server spans, stable
operation ids (the route's name), an OpenAPI document whose every error is a problem,
bearer-token verification and audited refusals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from mmgen.platform.auth.verifier import TokenVerifier
from mmgen.platform.clients import LoopbackOnlyMiddleware
from mmgen.platform.denials import AccessDenialRecorder, LoggingDenialRecorder
from mmgen.platform.errors import ConfigurationError
from mmgen.platform.health import ReadinessCheck, health_router
from mmgen.platform.http import SERVER_KEEP_ALIVE_S
from mmgen.platform.limits import BodySizeLimitMiddleware, declares_route_limits
from mmgen.platform.logs import configure_logging
from mmgen.platform.metrics import (
    HttpMetrics,
    MetricsMiddleware,
    metrics_router,
    register_process_metrics,
)
from mmgen.platform.openapi import install_problem_openapi
from mmgen.platform.problems import (
    ProblemSpec,
    UnhandledErrorMiddleware,
    install_problem_handlers,
    registered_problem_handler,
)
from mmgen.platform.settings import ServiceSettings
from mmgen.platform.telemetry import configure_tracing, instrument_app

logger = logging.getLogger("mmgen.platform.app")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def operation_id(route: APIRoute) -> str:
    """OpenAPI operation ids are route names: stable across refactors of paths and tags."""
    return route.name


class PlatformApp(FastAPI):
    """FastAPI with two wiring methods services use: problem mapping and readiness checks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._problem_specs: dict[type[Exception], ProblemSpec] = {}

    def register_problem(
        self,
        exc_type: type[Exception],
        *,
        status: int,
        title: str | None = None,
        slug: str | None = None,
        detail: str | Callable[[Any], str] | None = None,
        extensions: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        """Render `exc_type` (and subclasses) as a problem — the one place a service maps
        its domain exceptions. Register before the app serves its first request."""
        self._problem_specs[exc_type] = ProblemSpec(status, title, slug, detail, extensions)
        self.add_exception_handler(exc_type, registered_problem_handler(self._problem_specs))

    def add_readiness_check(self, check: ReadinessCheck) -> None:
        """Add a check (e.g. from the lifespan, once the client it probes exists)."""
        checks: list[ReadinessCheck] = self.state.readiness_checks
        if any(existing.name == check.name for existing in checks):
            raise ConfigurationError(f"a readiness check named {check.name!r} exists already")
        checks.append(check)


def _check_unique_operation_ids(routers: Sequence[APIRouter]) -> None:
    seen: dict[str, str] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                if route.name in seen:
                    raise ConfigurationError(
                        f"duplicate operation id {route.name!r} "
                        f"({seen[route.name]} and {route.path}); give routes unique names"
                    )
                seen[route.name] = route.path


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    version: str,
    routers: Sequence[APIRouter] = (),
    readiness_checks: Sequence[ReadinessCheck] = (),
    lifespan: Lifespan | None = None,
    token_verifier: TokenVerifier | None = None,
    denial_recorder: AccessDenialRecorder | None = None,
    problems: Mapping[type[Exception], ProblemSpec] | None = None,
    metrics_registry: CollectorRegistry | None = None,
    description: str | None = None,
) -> PlatformApp:
    """Build a service's FastAPI app.

    Fails closed first: with a development secret outside the local stack it raises
    `InsecureSecretError` naming the variables (`ServiceSettings.refuse_development_secrets`);
    the local stack answers only requests that arrived on loopback (`LoopbackOnlyMiddleware`).

    - `token_verifier`: defaults to one on `settings.jwks_url` (closed on shutdown); identity
      passes its own on a `StaticKeySet`. May also be set later as `app.state.token_verifier`.
    - `denial_recorder`: receives every 401/403. The default only logs — acceptable solely
      for a service holding no personal data; the others pass an event-store recorder.
    - `lifespan`: the service's own; it runs inside the platform's.
    """
    settings.refuse_development_secrets()
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    _check_unique_operation_ids([*routers, health_router(), metrics_router()])

    owned_verifier = False
    if token_verifier is None and settings.jwks_url:
        token_verifier = TokenVerifier.from_settings(settings)
        owned_verifier = True

    @asynccontextmanager
    async def platform_lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            if owned_verifier and token_verifier is not None:
                stack.push_async_callback(token_verifier.aclose)
            state = None
            if lifespan is not None:
                state = await stack.enter_async_context(lifespan(app))
            logger.info("service started", extra={"version": version})
            yield state
        logger.info("service stopped")

    app = PlatformApp(
        title=title,
        version=version,
        description=description or "",
        lifespan=platform_lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.token_verifier = token_verifier
    app.state.denial_recorder = denial_recorder or LoggingDenialRecorder()
    app.state.readiness_checks = list(readiness_checks)
    app.state.readiness_timeout = settings.readiness_timeout_seconds
    app.state.metrics = HttpMetrics(metrics_registry)
    register_process_metrics(app.state.metrics.registry, settings.service_name, version)

    install_problem_handlers(app)
    for exc_type, spec in (problems or {}).items():
        app.register_problem(
            exc_type,
            status=spec.status,
            title=spec.title,
            slug=spec.slug,
            detail=spec.detail,
            extensions=spec.extensions,
        )

    # add_middleware puts each new one outside the previous: innermost first.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        route_limits=declares_route_limits(r for router in routers for r in router.routes),
    )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.is_local_stack:  # development secrets: serve this machine only
        app.add_middleware(LoopbackOnlyMiddleware)

    app.include_router(health_router())
    app.include_router(metrics_router())
    for router in routers:
        app.include_router(router)

    install_problem_openapi(app)
    instrument_app(app, configure_tracing(settings.service_name))
    return app


def server_config(app: FastAPI, settings: ServiceSettings) -> Any:
    """The uvicorn configuration `serve` runs (an `uvicorn.Config`).

    Fails closed on development secrets first. uvicorn's proxy headers stay off: it would
    believe `X-Forwarded-For` from any loopback peer. The client address is resolved by
    `mmgen.platform.clients.client_address`, which believes the header only from
    `settings.trusted_proxies`.
    """
    import uvicorn

    settings.refuse_development_secrets()
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=SERVER_KEEP_ALIVE_S,
    )


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the app with uvicorn (`server_config`), logging through our JSON handler."""
    import uvicorn

    uvicorn.Server(server_config(app, settings)).run()

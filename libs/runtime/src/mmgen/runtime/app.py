"""`build_service_app`: a service's FastAPI app on its runtime, with every shared edge in place.

On top of the platform's `create_app` (problem+json, body limit, health, metrics, tracing,
token verification, audited refusals), it adds what every event-sourced service serves the
same way: the runtime's lifespan and readiness checks, its metrics registry, the
subject-rights router of the erasure contract, `/asyncapi.json`, and the denial recorder that
turns each 401/403 of a verified caller into the service's `AccessDenied` event and samples
anonymous and invalid-token refusals (`AggregatingDenialRecorder`: at most one event per route,
status and code per `denial_sample_seconds`, every refusal counted in `access_denials_total`).
Tokens of accounts identity closed or erased are refused when the runtime consumes identity's
revocations.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence

from fastapi import APIRouter, FastAPI, Response

from mmgen.events.asyncapi import events_asyncapi
from mmgen.platform import AccessDenialRecorder, PlatformApp, ProblemSpec
from mmgen.platform import create_app as create_platform_app
from mmgen.platform.auth import KeySet, TokenVerifier
from mmgen.platform.denials import AggregatingDenialRecorder
from mmgen.runtime.erasure import keys_router, subject_rights_router
from mmgen.runtime.service import ServiceRuntime
from mmgen.runtime.trail import EventStoreDenialRecorder


def asyncapi_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["meta"])

    @router.get("/asyncapi.json", name="asyncapi")
    async def asyncapi() -> Response:
        """The AsyncAPI document of the service's topics: the events it publishes (from its
        event registry), the commands it copies, and what its inbox reads."""
        doc = events_asyncapi(
            runtime.registry,
            runtime.events_topic,
            service=runtime.name,
            bootstrap=runtime.settings.kafka_bootstrap,
            consumes=runtime.consumed_event_types(),
            group=runtime.settings.inbox_group,
            groups=runtime.consumer_groups(),
            copies=runtime.copied_event_types(),
            others=[(d.topic, d.reads, d.description) for d in runtime.documented_topics],
        )
        return Response(json.dumps(doc), media_type="application/json")

    return router


def build_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    problems: Mapping[type[Exception], ProblemSpec] | None = None,
    token_verifier: TokenVerifier | None = None,
    key_set: KeySet | None = None,
    denial_recorder: AccessDenialRecorder | None = None,
) -> PlatformApp:
    """The app of one service.

    Tokens are verified by `token_verifier` (identity passes its own), else from identity's
    JWKS (`<SERVICE>_JWKS_URL`) or `key_set` (tests), refusing revoked subjects.
    """
    settings = runtime.settings
    owned_verifier = token_verifier is None and (key_set is not None or settings.jwks_url)
    if owned_verifier:
        token_verifier = TokenVerifier.from_settings(
            settings, keys=key_set, denylist=runtime.revocations
        )
    all_routers = [*routers, asyncapi_router(runtime), keys_router(runtime.kernel.keystore)]
    if runtime.participant is not None:
        all_routers.append(subject_rights_router(runtime.participant, runtime.trail))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with runtime.lifespan():
                yield
        finally:
            if owned_verifier and token_verifier is not None:
                await token_verifier.aclose()

    app = create_platform_app(
        settings,
        title=title,
        version=version,
        description=description,
        routers=all_routers,
        readiness_checks=runtime.readiness_checks(),
        lifespan=lifespan,
        token_verifier=token_verifier,
        denial_recorder=AggregatingDenialRecorder(
            denial_recorder or EventStoreDenialRecorder(runtime.trail),
            window=settings.denial_sample_seconds,
        ),
        problems=problems,
        metrics_registry=runtime.metrics_registry,
    )
    app.state.runtime = runtime
    return app

"""The consent service's ASGI app factory (zero-argument, for `uvicorn --factory`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from mmgen.consent import __version__
from mmgen.consent.bootstrap import Consent, bootstrap
from mmgen.consent.domain.errors import (
    ConsentConflictError,
    NoCurrentPolicyError,
    PolicyNotFoundError,
    PolicyVersionExistsError,
    PolicyVersionUnknownError,
    PurposeNotConsentBasedError,
    PurposeUnknownError,
    SubjectErasedError,
)
from mmgen.consent.entrypoints.api.denials import EventStoreDenialRecorder
from mmgen.consent.entrypoints.api.routes import router
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import AccessDenialRecorder, PlatformApp
from mmgen.platform import create_app as create_platform_app
from mmgen.platform.auth import KeySet, TokenVerifier


def build_app(
    settings: ConsentSettings,
    *,
    key_set: KeySet | None = None,
    consent: Consent | None = None,
) -> PlatformApp:
    """Build the app for the given settings.

    Tokens are verified with identity's JWKS (`CONSENT_JWKS_URL`), or with `key_set` (tests),
    and refused for subjects identity closed or erased (the revocations consumer).
    """
    container = consent or bootstrap(settings)
    verifier = TokenVerifier.from_settings(settings, keys=key_set, denylist=container.revocations)
    recorder: AccessDenialRecorder = EventStoreDenialRecorder(container.service)
    routers = [router]
    if container.audit is not None:
        routers.append(container.audit.router)
        wrap = getattr(container.audit.denial_recorder, "wrap", None)
        if wrap is not None:
            recorder = wrap(recorder)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with container.lifespan():
                yield
        finally:
            await verifier.aclose()

    app = create_platform_app(
        settings,
        title="consent",
        version=__version__,
        description="Consents, policy versions, the tracking gate, erasure, and the audit log.",
        routers=routers,
        readiness_checks=container.readiness_checks(),
        lifespan=lifespan,
        token_verifier=verifier,
        denial_recorder=recorder,
        metrics_registry=container.metrics_registry,
    )
    app.state.consent = container
    app.register_problem(PurposeUnknownError, status=404, slug="purpose-not-found")
    app.register_problem(PurposeNotConsentBasedError, status=422, slug="purpose-not-consent-based")
    app.register_problem(
        PolicyVersionUnknownError,
        status=422,
        slug="policy-version-unknown",
        extensions=lambda e: {
            "errors": [{"field": "policy_version", "msg": "not a published version"}]
        },
    )
    app.register_problem(PolicyVersionExistsError, status=409, slug="policy-version-exists")
    app.register_problem(NoCurrentPolicyError, status=404, slug="no-current-policy")
    app.register_problem(PolicyNotFoundError, status=404, slug="policy-not-found")
    app.register_problem(SubjectErasedError, status=410, slug="subject-erased")
    app.register_problem(ConsentConflictError, status=409, slug="consent-conflict")
    return app


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(ConsentSettings())

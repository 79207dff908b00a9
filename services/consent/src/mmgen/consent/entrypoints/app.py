"""The consent service's ASGI app factory (zero-argument, for `uvicorn --factory`)."""

from __future__ import annotations

from fastapi import APIRouter

from mmgen.consent import __version__
from mmgen.consent.audit.api import AUDIT_PROBLEMS
from mmgen.consent.bootstrap import Consent, bootstrap
from mmgen.consent.entrypoints.api.problems import PROBLEMS
from mmgen.consent.entrypoints.api.routes import router
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import AccessDenialRecorder, PlatformApp, ProblemSpec
from mmgen.platform.auth import KeySet
from mmgen.runtime.app import build_service_app
from mmgen.runtime.trail import EventStoreDenialRecorder


def build_app(
    settings: ConsentSettings,
    *,
    key_set: KeySet | None = None,
    consent: Consent | None = None,
) -> PlatformApp:
    """The app on `consent` (default: `bootstrap(settings)`).

    Tokens are verified with identity's JWKS (`CONSENT_JWKS_URL`), or with `key_set` (tests),
    and refused for subjects identity closed or erased. Every refusal becomes a
    `consent.AccessDenied` event, except refusals on `/audit/*`, which the audit log records
    in itself.
    """
    container = consent or bootstrap(settings)
    routers: list[APIRouter] = [router]
    problems: dict[type[Exception], ProblemSpec] = dict(PROBLEMS)
    recorder: AccessDenialRecorder = EventStoreDenialRecorder(container.runtime.trail)
    if container.audit is not None:
        routers.append(container.audit.router)
        problems.update(AUDIT_PROBLEMS)
        recorder = container.audit.denial_recorder.wrap(recorder)
    app = build_service_app(
        container.runtime,
        title="consent",
        version=__version__,
        description="Consents, policy versions, the tracking gate, erasure, and the audit log.",
        routers=routers,
        problems=problems,
        key_set=key_set,
        denial_recorder=recorder,
    )
    app.state.consent = container
    return app


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(ConsentSettings())

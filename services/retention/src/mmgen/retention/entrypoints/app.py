"""The retention service's ASGI app factory (zero-argument, for `uvicorn --factory`)."""

from __future__ import annotations

from mmgen.platform import PlatformApp
from mmgen.platform.auth import KeySet
from mmgen.retention import __version__
from mmgen.retention.bootstrap import Retention, bootstrap
from mmgen.retention.entrypoints.api.problems import PROBLEMS
from mmgen.retention.entrypoints.api.routes import router
from mmgen.retention.settings import RetentionSettings
from mmgen.runtime.app import build_service_app


def build_app(
    settings: RetentionSettings,
    *,
    key_set: KeySet | None = None,
    retention: Retention | None = None,
) -> PlatformApp:
    """The app on `retention` (default: `bootstrap(settings)`).

    Tokens are verified with identity's JWKS (`RETENTION_JWKS_URL`), or with `key_set`
    (tests), and refused for subjects identity closed or erased.
    """
    container = retention or bootstrap(settings)
    app = build_service_app(
        container.runtime,
        title="retention",
        version=__version__,
        description=(
            "Privacy requests with legal deadlines, access packages, erasure orchestrated to "
            "verified with a signed receipt, legal holds and retention policies."
        ),
        routers=[router],
        problems=PROBLEMS,
        key_set=key_set,
    )
    app.state.retention = container
    return app


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(RetentionSettings())

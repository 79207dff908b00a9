"""The profiles service's ASGI app factory (zero-argument, for `uvicorn --factory`)."""

from __future__ import annotations

from mmgen.platform import PlatformApp
from mmgen.platform.auth import KeySet
from mmgen.profiles import __version__
from mmgen.profiles.bootstrap import ProfilesService, bootstrap
from mmgen.profiles.entrypoints.api.problems import PROBLEMS
from mmgen.profiles.entrypoints.api.routes import router
from mmgen.profiles.settings import ProfilesSettings
from mmgen.runtime.app import build_service_app


def build_app(
    settings: ProfilesSettings,
    *,
    key_set: KeySet | None = None,
    service: ProfilesService | None = None,
) -> PlatformApp:
    """The app on `service` (default: `bootstrap(settings)`).

    Tokens are verified with identity's JWKS (`PROFILES_JWKS_URL`), or with `key_set` (tests),
    and refused for subjects identity closed or erased. Every 401 and 403 becomes a
    `profiles.AccessDenied` event (the runtime's denial recorder).
    """
    wired = service or bootstrap(settings)
    app = build_service_app(
        wired.runtime,
        title="profiles",
        version=__version__,
        description=(
            "Creator profiles for client selection: search over published profiles, and "
            "sensitive fields revealed only under the creator's live consent or a shared project."
        ),
        routers=[router],
        problems=PROBLEMS,
        key_set=key_set,
    )
    app.state.profiles = wired
    return app


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(ProfilesSettings())

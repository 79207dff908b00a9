"""The identity app factory: `create_app()` for `mmgen up`/uvicorn, `build_app(settings)` for tests.

Everything shared — the lifespan of the kernel, topics, relay, inbox and projector, readiness,
metrics, audited refusals, `/asyncapi.json`, `/internal/subjects/{id}/export|footprint` — comes
from the runtime (`mmgen.runtime.app.build_service_app`). identity adds its routes, its problem
map, and its own token verifier: it verifies from its key ring, never from a JWKS URL.
"""

from __future__ import annotations

from mmgen.identity import __version__
from mmgen.identity.bootstrap import IdentityService, bootstrap
from mmgen.identity.entrypoints.api.problems import PROBLEMS
from mmgen.identity.entrypoints.api.routes import ROUTERS
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import PlatformApp
from mmgen.runtime.app import build_service_app

DESCRIPTION = "Accounts, passwords and tokens of the Multimedia Gen platform."


def create_app() -> PlatformApp:
    """Zero-argument factory (`uvicorn --factory`, the `mmgen.services` entry point)."""
    return build_app(IdentitySettings())


def build_app(settings: IdentitySettings) -> PlatformApp:
    # `mmgen up` gives every service identity's JWKS URL; identity itself never uses it.
    return app_for(bootstrap(settings.model_copy(update={"jwks_url": None})))


def app_for(identity: IdentityService) -> PlatformApp:
    """The app of an already wired service (tests pass one built over fakes)."""
    app = build_service_app(
        identity.runtime,
        title="identity",
        version=__version__,
        description=DESCRIPTION,
        routers=ROUTERS,
        problems=PROBLEMS,
        token_verifier=identity.verifier,
    )
    app.state.identity = identity
    return app

"""The projects service's app factory: `create_app()` for `mmgen up`/uvicorn, `build_app(settings)`
for tests (which pass a key set instead of identity's JWKS, or a service of their own)."""

from __future__ import annotations

from fastapi import APIRouter

from mmgen.platform import PlatformApp
from mmgen.platform.auth import KeySet
from mmgen.projects import __version__
from mmgen.projects.bootstrap import Projects, bootstrap
from mmgen.projects.entrypoints.api import disclosures, files, messages, projects
from mmgen.projects.entrypoints.api.problems import PROBLEMS
from mmgen.projects.settings import ProjectsSettings
from mmgen.runtime.app import build_service_app


def routers(settings: ProjectsSettings) -> list[APIRouter]:
    return [
        projects.router(settings),
        messages.router(settings),
        files.router(settings),
        disclosures.router(),
    ]


def build_app(
    settings: ProjectsSettings,
    *,
    key_set: KeySet | None = None,
    service: Projects | None = None,
) -> PlatformApp:
    """The app on `service` (default: `bootstrap(settings)`).

    Tokens are verified with identity's JWKS (`PROJECTS_JWKS_URL`), or with `key_set` (tests),
    and refused for subjects identity closed or erased. Every 401/403 becomes a
    `projects.AccessDenied` event through the runtime's denial recorder; the use cases record
    their own refusals (404 for anyone outside the access matrix, 422 for a forbidden
    disclosure purpose) the same way.
    """
    wired = service or bootstrap(settings)
    app = build_service_app(
        wired.runtime,
        title="projects",
        version=__version__,
        description=(
            "Client projects, membership, messages, encrypted files and disclosures; every "
            "read bound to membership, role and purpose, every read and refusal audited."
        ),
        routers=routers(settings),
        problems=PROBLEMS,
        key_set=key_set,
    )
    app.state.projects = wired
    return app


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(ProjectsSettings())

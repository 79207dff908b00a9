"""The consent service's ASGI app factory (zero-argument, for `uvicorn --factory`)."""

from __future__ import annotations

from mmgen.consent import __version__
from mmgen.consent.settings import ConsentSettings
from mmgen.platform import PlatformApp
from mmgen.platform import create_app as create_platform_app


def build_app(settings: ConsentSettings) -> PlatformApp:
    """Build the app for the given settings (tests pass their own)."""
    return create_platform_app(settings, title="consent", version=__version__)


def create_app() -> PlatformApp:
    """Zero-argument factory registered under the `mmgen.services` entry points."""
    return build_app(ConsentSettings())

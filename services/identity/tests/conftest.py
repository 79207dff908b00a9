"""Fixtures of identity's tests; the helpers are in `identity_kit` (beside this file).

`svc` is one identity app per test module (its own database and topic prefix), run in-process
with its lifespan; a module adjusts its settings with a module-level `IDENTITY_SETTINGS` dict.
Tests using it run on the module's event loop (`pytestmark = pytest.mark.asyncio(loop_scope=
"module")`) and use random ids, so they do not depend on each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from mmgen.identity.settings import IdentitySettings
from services.identity.tests.identity_kit import Running, identity_settings, running


@pytest.fixture
def settings_factory(infra: Any) -> Callable[..., IdentitySettings]:
    def factory(**overrides: Any) -> IdentitySettings:
        return identity_settings(infra, **overrides)

    return factory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def svc(request: pytest.FixtureRequest, infra: Any) -> AsyncIterator[Running]:
    overrides = getattr(request.module, "IDENTITY_SETTINGS", {})
    async with running(identity_settings(infra, **overrides), mail_dir=infra.mail_dir) as app:
        yield app

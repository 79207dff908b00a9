"""Fixtures of identity's tests (the helpers themselves live in `mmgen.identity.testing`).

`svc` is one identity app per test module (its own database and topic prefix), run in-process
with its lifespan; a module adjusts its settings with a module-level `IDENTITY_SETTINGS` dict.
Tests using it run on the module's event loop (`pytestmark = pytest.mark.asyncio(loop_scope=
"module")`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from mmgen.identity.settings import IdentitySettings
from mmgen.identity.testing import Running, make_settings, running


@pytest.fixture
def settings_factory(infra: Any) -> Any:
    def factory(**overrides: Any) -> IdentitySettings:
        return make_settings(infra, **overrides)

    return factory


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def svc(request: pytest.FixtureRequest, infra: Any) -> AsyncIterator[Running]:
    overrides = getattr(request.module, "IDENTITY_SETTINGS", {})
    async with running(make_settings(infra, **overrides)) as app:
        yield app

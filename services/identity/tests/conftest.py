"""Fixtures of identity's tests (the helpers themselves live in `mmgen.identity.testing`)."""

from __future__ import annotations

from typing import Any

import pytest

from mmgen.identity.settings import IdentitySettings
from mmgen.identity.testing import make_settings


@pytest.fixture
def settings_factory(infra: Any) -> Any:
    def factory(**overrides: Any) -> IdentitySettings:
        return make_settings(infra, **overrides)

    return factory

"""Unit tests run identity over the in-memory kernel and the `InMemory*` fakes."""

from __future__ import annotations

import pytest

from mmgen.identity.bootstrap import IdentityService
from services.identity.tests.identity_kit import memory_identity


@pytest.fixture
def identity() -> IdentityService:
    return memory_identity()

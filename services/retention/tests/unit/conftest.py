"""Unit-test fixtures: the retention use cases over in-memory fakes."""

from __future__ import annotations

import pytest

from ..harness import Harness, build_harness


@pytest.fixture
def h() -> Harness:
    return build_harness()

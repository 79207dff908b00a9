"""Shared fixtures for mmgen.auditlog unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@pytest.fixture
def vectors() -> Path:
    """Root of the copied test vectors (tests/vectors), independent of ../shared."""
    return VECTORS

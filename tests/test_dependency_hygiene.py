"""Issue 16: every member declares what it imports; what services and the verifier install
carries only allowed licences, and never the GPL local database (scripts/dependency_hygiene.py,
which `make lint` runs too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "dependency_hygiene.py"


@pytest.fixture(scope="module")
def hygiene() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dependency_hygiene", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_mmgen_import_is_a_declared_dependency(hygiene: ModuleType) -> None:
    assert hygiene.check_mmgen_declarations() == []


def test_deptry_finds_nothing_undeclared_or_unused(hygiene: ModuleType) -> None:
    assert hygiene.run_deptry() == []


def test_runtime_closures_carry_allowed_licences_only(hygiene: ModuleType) -> None:
    assert hygiene.check_licences() == []


def test_the_closure_would_show_the_local_database(hygiene: ModuleType) -> None:
    """The GPL database is what the local stack runs: its member's closure has it, the
    services' and the verifier's do not."""
    assert "secantusdb" in hygiene.runtime_closure(["mmgen-localstack"])
    assert "secantusdb" not in hygiene.runtime_closure(hygiene.RUNTIME_ROOTS)
    assert "mmgen-auditlog" in hygiene.runtime_closure(["mmgen-verify"])


def test_a_licence_outside_the_allow_list_is_reported(
    hygiene: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hygiene, "ALLOWED_LICENCES", ["MIT"])
    problems = hygiene.check_licences()
    assert problems and "not in allow-only" in problems[0]

"""Issue 16: every member declares what it imports; what services and the verifier install
carries only allowed licences, and never the GPL local database (scripts/dependency_hygiene.py,
which `make lint` runs too)."""

from __future__ import annotations

import importlib.util
import sys
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


AUDIT_SCRIPT = SCRIPT.parent / "vulnerability_audit.py"


@pytest.fixture(scope="module")
def vulnerabilities() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vulnerability_audit", AUDIT_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_audit_reads_every_pinned_package_and_no_member(vulnerabilities: ModuleType) -> None:
    pinned = vulnerabilities.pinned_requirements().splitlines()
    names = {line.split("==")[0] for line in pinned}
    assert all("==" in line for line in pinned)
    assert {"httpx", "pymongo", "cryptography"} <= names
    assert not any(name.startswith("mmgen") for name in names)


def test_a_known_vulnerability_fails_and_a_skipped_package_is_not_a_pass(
    vulnerabilities: ModuleType,
) -> None:
    report = {
        "dependencies": [
            {"name": "httpx", "version": "0.28.1", "vulns": []},
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
            },
            {"name": "uvloop", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    result = vulnerabilities.parse_report(report)
    assert (result.audited, list(result.skipped)) == (2, ["uvloop"])
    [finding] = result.findings
    assert finding.line() == "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in: 3.1.3)"

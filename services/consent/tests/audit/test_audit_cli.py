"""`mmgen audit verify --file`: an export verified offline with a pinned key, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.merkle import TreeAppender
from mmgen.cli.main import app

ORIGIN = "test.local/audit"


@pytest.fixture
def exported(tmp_path: Path, item: Any) -> tuple[Path, NoteSigner, list[dict[str, Any]]]:
    builder, appender = ChainBuilder(), TreeAppender()
    entries = []
    for n in range(50):
        fields = item(producer_seq=n + 1)
        entry = builder.append(recorded_at=fields["occurred_at"], **fields)
        appender.append(entry.leaf_hash)
        entries.append(entry.to_json())
        if n == 29:
            old_root = appender.root()
    signer = NoteSigner.generate(ORIGIN)
    (tmp_path / "head.note").write_text(
        sign_checkpoint(Checkpoint(ORIGIN, 50, appender.root()), signer)
    )
    (tmp_path / "saved.note").write_text(sign_checkpoint(Checkpoint(ORIGIN, 30, old_root), signer))
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path, signer, entries


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["audit", "verify", *args])


def test_valid_export_passes_and_tampering_fails(exported: Any, tmp_path: Path) -> None:
    path, signer, entries = exported
    key = signer.verifier().to_string()
    (tmp_path / "key.pub").write_text(key + "\n")
    common = ["--public-key", f"@{tmp_path / 'key.pub'}", "--file", str(path)]
    ok = run(
        *common,
        "--checkpoint",
        str(tmp_path / "head.note"),
        "--saved-head",
        str(tmp_path / "saved.note"),
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    verdict = json.loads(ok.stdout)
    assert verdict["valid"] and verdict["checked"] == 50 and verdict["consistent_with_saved"]
    # One changed member in entry 12.
    entries[12]["purpose"] = "security"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    bad = run(*common, "--checkpoint", str(tmp_path / "head.note"), "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["first_bad_seq"] == 12
    # A wrong pinned key: the head is refused.
    other = NoteSigner.generate(ORIGIN).verifier().to_string()
    refused = run(
        "--public-key", other, "--file", str(path), "--checkpoint", str(tmp_path / "head.note")
    )
    assert refused.exit_code == 1 and "INVALID" in refused.stdout


def test_reordered_or_truncated_export_fails(exported: Any, tmp_path: Path) -> None:
    path, signer, entries = exported
    key = signer.verifier().to_string()
    swapped = entries[:]
    swapped[20], swapped[21] = swapped[21], swapped[20]
    path.write_text("".join(json.dumps(e) + "\n" for e in swapped))
    result = run("--public-key", key, "--file", str(path), "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["first_bad_seq"] == 20
    # Shorter than the saved head: history lost.
    path.write_text("".join(json.dumps(e) + "\n" for e in entries[:25]))
    short = run(
        "--public-key",
        key,
        "--file",
        str(path),
        "--saved-head",
        str(tmp_path / "saved.note"),
        "--json",
    )
    assert short.exit_code == 1 and json.loads(short.stdout)["consistent_with_saved"] is False
    assert run("--public-key", "not-a-key", "--file", str(path)).exit_code == 2

"""`mmgen-verify verify --file`: an export and its head checked offline against pinned keys,
with and without a quorum of witness cosignatures; exit codes as documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mmgen.auditlog.checkpoint import Checkpoint, NoteSigner, parse_note, sign_checkpoint
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.auditlog.entry import ChainBuilder
from mmgen.auditlog.merkle import TreeAppender
from mmgen.verifier.cli import app

ORIGIN = "verify.test/audit"
T0 = "2026-11-25T08:00:00.000Z"


class Log:
    """An exported log of 50 entries, its signed heads, a witness that cosigned the last."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.signer = NoteSigner.generate(ORIGIN)
        self.w1 = CosignatureSigner.generate("w1.test/witness")
        self.w2 = CosignatureSigner.generate("w2.test/witness")
        builder, appender = ChainBuilder(), TreeAppender()
        self.entries: list[dict[str, Any]] = []
        roots = {}
        for n in range(50):
            entry = builder.append(
                event_id=f"event-{n}",
                producer="identity",
                producer_seq=n + 1,
                event_type="identity.UserRead",
                action="read",
                subject_id=f"subject-{n % 4}",
                actor_id="staff-1",
                actor_role="staff",
                purpose="support",
                resource={"type": "account", "id": f"subject-{n % 4}"},
                categories=("contact",),
                occurred_at=T0,
                recorded_at=T0,
            )
            appender.append(entry.leaf_hash)
            roots[n + 1] = appender.root()
            self.entries.append(entry.to_json())
        self.head = sign_checkpoint(Checkpoint(ORIGIN, 50, roots[50]), self.signer)
        text = parse_note(self.head).text
        self.cosigned = self.head + self.w1.cosign(text, 1_800_000_000).line()
        self.saved = sign_checkpoint(Checkpoint(ORIGIN, 30, roots[30]), self.signer)
        self.write(self.entries)
        for name, note in (("head", self.cosigned), ("bare", self.head), ("saved", self.saved)):
            (tmp / f"{name}.note").write_text(note)

    def write(self, entries: list[dict[str, Any]]) -> Path:
        path = self.tmp / "export.jsonl"
        path.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries))
        return path

    def args(self, *more: str, head: str = "head") -> list[str]:
        return [
            "verify",
            "--public-key",
            self.signer.verifier().to_string(),
            "--file",
            str(self.tmp / "export.jsonl"),
            "--checkpoint",
            str(self.tmp / f"{head}.note"),
            *more,
        ]


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path)


def run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})


def w(signer: CosignatureSigner) -> str:
    return signer.verifier().to_string()


def test_a_head_cosigned_by_the_required_witnesses_passes(log: Log) -> None:
    result = run(log.args("--witness-key", w(log.w1), "--quorum", "1", "--json"))
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["valid"] and verdict["checked"] == 50
    assert verdict["witnesses"] == ["w1.test/witness"] and verdict["quorum"] == 1
    # Two pinned witnesses, one needed: still fine; the human output names the witness.
    human = run(log.args("--witness-key", w(log.w1), "--witness-key", w(log.w2), "--quorum", "1"))
    assert human.exit_code == 0 and "cosigned by 1 pinned witness(es): w1.test/witness" in (
        human.stdout
    )
    # Without witness keys the log's own signature is all that is required.
    assert run(log.args(head="bare")).exit_code == 0


def test_too_few_cosignatures_fail_with_exit_1(log: Log) -> None:
    for args in (
        log.args("--witness-key", w(log.w1), "--witness-key", w(log.w2), "--quorum", "2"),
        log.args("--witness-key", w(log.w1), "--witness-key", w(log.w2)),  # default: all
        log.args("--witness-key", w(log.w1), "--quorum", "1", head="bare"),
        log.args("--witness-key", w(log.w2), "--quorum", "1"),  # cosigned by another witness
    ):
        result = run([*args, "--json"])
        assert result.exit_code == 1, result.output
        verdict = json.loads(result.stdout)
        assert not verdict["valid"] and verdict["code"] == "witness_quorum_not_met"


def test_a_forged_cosignature_of_a_pinned_witness_fails(log: Log) -> None:
    other = sign_checkpoint(Checkpoint(ORIGIN, 49, bytes(32)), log.signer)
    forged = log.head + log.w1.cosign(parse_note(other).text, 5).line()
    (log.tmp / "head.note").write_text(forged)
    result = run(log.args("--witness-key", w(log.w1), "--quorum", "1", "--json"))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["code"] == "checkpoint_invalid"


def test_usage_errors_exit_2(log: Log) -> None:
    assert run(log.args("--witness-key", w(log.w1), "--quorum", "2")).exit_code == 2
    assert run(log.args("--witness-key", "not-a-key")).exit_code == 2
    assert run(log.args("--witness-key", f"@{log.tmp / 'missing'}")).exit_code == 2
    no_head = [a for a in log.args() if a not in ("--checkpoint", str(log.tmp / "head.note"))]
    assert run([*no_head, "--witness-key", w(log.w1)]).exit_code == 2
    key_file = log.tmp / "witnesses.txt"
    key_file.write_text(f"{w(log.w1)}\n{w(log.w2)}\n")
    both = run(log.args("--witness-key", f"@{key_file}", "--quorum", "1"))
    assert both.exit_code == 0, both.output


def test_saved_head_tampering_and_truncation_offline(log: Log) -> None:
    ok = run(log.args("--saved-head", str(log.tmp / "saved.note"), "--json"))
    assert ok.exit_code == 0 and json.loads(ok.stdout)["consistent_with_saved"] is True
    tampered = [dict(e) for e in log.entries]
    tampered[12]["purpose"] = "marketing"
    log.write(tampered)
    bad = json.loads(run(log.args("--json")).stdout)
    assert (bad["valid"], bad["first_bad_seq"], bad["code"]) == (False, 12, "hash_mismatch")
    log.write(log.entries[:25])
    short = run(log.args("--saved-head", str(log.tmp / "saved.note"), "--json"))
    assert short.exit_code == 1 and json.loads(short.stdout)["code"] == "checkpoint_beyond_entries"
    unsigned = [a for a in log.args() if a not in ("--checkpoint", str(log.tmp / "head.note"))]
    short = run([*unsigned, "--saved-head", str(log.tmp / "saved.note"), "--json"])
    verdict = json.loads(short.stdout)
    assert short.exit_code == 1 and verdict["consistent_with_saved"] is False
    assert verdict["code"] == "inconsistent_with_saved_head"

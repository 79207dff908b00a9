"""`mmgen logs`: the last lines of a component's log, following what is appended, and a clear
refusal for a name that has no log."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

from typer.testing import CliRunner

from mmgen.cli.logs import follow
from mmgen.cli.main import app


def _state(tmp_path: Path, **logs: str) -> Path:
    folder = tmp_path / "state" / "logs"
    folder.mkdir(parents=True)
    for name, text in logs.items():
        (folder / f"{name}.log").write_text(text)
    return tmp_path / "state"


def test_shows_the_last_lines_of_the_named_log(tmp_path: Path) -> None:
    lines = "".join(f"line {i}\n" for i in range(100))
    state = _state(tmp_path, identity=lines, consent="other\n")
    result = CliRunner().invoke(app, ["logs", "identity", "-n", "3", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert result.output == "line 97\nline 98\nline 99\n"


def test_an_unknown_name_or_a_path_is_refused_naming_the_logs_there_are(tmp_path: Path) -> None:
    state = _state(tmp_path, identity="x\n", broker="y\n")
    (tmp_path / "secret.log").write_text("not a component's\n")
    for name in ("projects", "../../secret", "identity.log"):
        result = CliRunner().invoke(app, ["logs", name, "--state-dir", str(state)])
        assert result.exit_code == 2
        assert "logs: broker, identity" in result.output
        assert "not a component's" not in result.output


def test_follow_yields_appended_text_and_starts_over_after_a_truncation(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    path.write_text("old\n")
    seen: list[str] = []
    stream = follow(path, start=path.stat().st_size, keep_going=lambda: len(seen) < 2, poll=0.01)
    with path.open("a") as handle:
        handle.write("new 1\n")
    seen.append(next(stream))
    path.write_text("reset\n")  # shorter than what was read: read again from the start
    seen.append(next(stream))
    assert seen == ["new 1\n", "reset\n"]


def test_follow_in_a_process_prints_new_lines_until_interrupted(tmp_path: Path) -> None:
    state = _state(tmp_path, retention="started\n")
    log = state / "logs" / "retention.log"
    mmgen = [sys.executable, "-c", "from mmgen.cli.main import main; main()"]
    with subprocess.Popen(
        [*mmgen, "logs", "retention", "-f", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        try:
            assert lines.get(timeout=30) == "started\n"
            with log.open("a") as handle:
                handle.write("erasure acknowledged\n")
            assert lines.get(timeout=30) == "erasure acknowledged\n"
        finally:
            proc.terminate()
            proc.wait(timeout=10)

"""Helpers to run the real `mmgen` command as a subprocess, on free ports and a temp state."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmgen.localstack.ports import free_port

MMGEN = str(Path(sys.executable).with_name("mmgen"))


@dataclass
class Cli:
    state_dir: Path
    broker_port: int
    database_port: int

    def args(self, command: str, *extra: str) -> list[str]:
        argv = [MMGEN, command, "--state-dir", str(self.state_dir)]
        if command == "up":
            argv += [
                "--broker-port",
                str(self.broker_port),
                "--database-port",
                str(self.database_port),
            ]
        return argv + list(extra)

    def run(self, command: str, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.args(command, *extra), capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture
def cli(tmp_path: Path):
    runner = Cli(tmp_path / "state", free_port(), free_port())
    yield runner
    runner.run("down")

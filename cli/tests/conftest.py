"""Helpers to run the real `mmgen` command as a subprocess, on free ports and a temp state."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mmgen.cli import stack
from mmgen.localstack.ports import free_port

MMGEN = str(Path(sys.executable).with_name("mmgen"))
HOST = "127.0.0.1"


@dataclass
class Cli:
    state_dir: Path
    broker_port: int
    database_port: int
    #: A free port for every service of the workspace, so no test touches 8001…8005.
    service_ports: dict[str, int] = field(default_factory=dict)
    #: The local SMTP sink's port (not the default 2525, which another run may hold).
    mail_port: int = field(default_factory=free_port)

    def args(self, command: str, *extra: str) -> list[str]:
        argv = [MMGEN, command, "--state-dir", str(self.state_dir)]
        if command == "up":
            argv += [
                "--broker-port",
                str(self.broker_port),
                "--database-port",
                str(self.database_port),
                "--mail-port",
                str(self.mail_port),
            ]
            for name, port in self.service_ports.items():
                argv += ["--port", f"{name}={port}"]
        return argv + list(extra)

    def run(
        self,
        command: str,
        *extra: str,
        timeout: float = 90,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(command, *extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **env} if env else None,
        )

    @property
    def all_ports(self) -> list[int]:
        return [
            self.broker_port, self.database_port, self.mail_port, *self.service_ports.values()
        ]  # fmt: skip


def leftover_processes(state_dir: Path, ports: list[int]) -> list[str]:
    """Command lines of live processes that belong to a stack on `state_dir` / `ports`.

    Services carry the state folder in their environment (`<NAME>_STATE_DIR`), the database
    in its storage path, the broker its port in its listener URL.
    """
    needles = [str(state_dir.resolve()).encode(), str(state_dir).encode()]
    needles += [f"{HOST}:{port}".encode() for port in ports]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":  # exited, not yet reaped: holds no port
            continue
        if any(needle in cmdline or needle in environ for needle in needles):
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def cli(tmp_path: Path):
    runner = Cli(
        tmp_path / "state",
        free_port(),
        free_port(),
        {service.name: free_port() for service in stack.discover_services()},
    )
    yield runner
    runner.run("down")

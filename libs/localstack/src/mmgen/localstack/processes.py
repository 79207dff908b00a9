"""Child processes of the local stack: start, wait until ready, stop — by recorded pid only.

The same code starts the broker and the database for `mmgen up` and for a test session, so
what the tests exercise is what a developer runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmgen.localstack.errors import ComponentExitedError, ComponentNotReadyError
from mmgen.localstack.ports import ensure_port_free, port_is_open, wait_port_closed


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages that name what went wrong."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16_384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """A child process we started, with the port it serves and the log it writes."""

    name: str
    port: int
    host: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)

    def stop(self, timeout: float = 15.0, kill: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL for crash tests) and wait for its port to close."""
        pid = self.popen.pid if self.popen is not None else self.pid
        if pid is None:
            return
        stop_pid(pid, timeout=timeout, kill=kill)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)
        wait_port_closed(self.host, self.port, timeout=timeout)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie child still answers kill(0); reap it so it counts as gone.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def stop_pid(pid: int, timeout: float = 15.0, kill: bool = False) -> None:
    """Signal the process group we created for the child, then wait for it to go away."""
    sig = signal.SIGKILL if kill else signal.SIGTERM
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def spawn(
    name: str,
    argv: Sequence[str],
    host: str,
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `argv` in its own session, stdout and stderr appended to `log_path`."""
    ensure_port_free(name, host, port)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(  # noqa: S603 - argv is built by this package, never from input
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    return ManagedProcess(
        name=name, port=port, host=host, log_path=log_path, popen=popen, pid=popen.pid
    )


def wait_ready(
    proc: ManagedProcess,
    probe: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
) -> None:
    """Poll `probe` until it answers True; fail naming the component if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise ComponentExitedError(proc.name, proc.port, proc.log_path, proc.log_tail())
        if port_is_open(proc.host, proc.port):
            try:
                if probe():
                    return
            except Exception:  # noqa: BLE001, S110 - not ready yet; the probe is retried
                pass
        time.sleep(interval)
    raise ComponentNotReadyError(proc.name, proc.port, proc.log_path, proc.log_tail(), timeout)


def python_argv(*args: str) -> list[str]:
    """argv for a module run by the interpreter running us (the workspace's virtualenv)."""
    return [sys.executable, *args]

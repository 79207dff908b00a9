"""Child processes of the local stack: start, wait until ready, stop — by recorded pid only.

The same code starts the broker and the database for `mmgen up` and for a test session, so
what the tests exercise is what a developer runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
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
    stop_pids([pid], timeout=timeout, kill=kill)


def stop_pids(pids: Sequence[int], timeout: float = 15.0, kill: bool = False) -> None:
    """Signal every process group at once, then wait for all: as long as the slowest, not
    the sum. Whatever is still alive at the deadline gets SIGKILL."""
    sig = signal.SIGKILL if kill else signal.SIGTERM
    for pid in pids:
        _signal_group(pid, sig)
    deadline = time.monotonic() + timeout
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        waiting = [pid for pid in waiting if pid_alive(pid)]
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        _signal_group(pid, signal.SIGKILL)
    while [pid for pid in waiting if pid_alive(pid)] and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


_PR_SET_PDEATHSIG = 1
_children_die_with_us = False


def children_die_with_this_process() -> None:
    """From now on, children spawned here are killed (SIGKILL) when this process dies.

    A test session calls this: a pytest(-xdist) worker that crashes or is killed cannot run
    its fixtures' teardown, and its broker, database and services would otherwise keep their
    ports and memory for ever. `mmgen up --detach` must not: its stack outlives it.
    Linux only (prctl PR_SET_PDEATHSIG); the kernel ties it to the spawning thread, so only
    children spawned from the main thread are tied (a worker thread may end before we do).
    """
    global _children_die_with_us
    _children_die_with_us = sys.platform == "linux"


def _die_with_parent_hook() -> Callable[[], None] | None:
    if not _children_die_with_us or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, not in the child
    parent = os.getpid()

    def hook() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return hook


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
            preexec_fn=_die_with_parent_hook(),
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
        if _answers(Launch(proc, probe)):
            return
        time.sleep(interval)
    raise ComponentNotReadyError(proc.name, proc.port, proc.log_path, proc.log_tail(), timeout)


@dataclass
class Launch:
    """A child just spawned and how to tell it is ready (its own protocol, not an open port)."""

    proc: ManagedProcess
    probe: Callable[[], bool]


def start_together(
    launchers: Sequence[Callable[[], Launch]],
    timeout: float,
    interval: float = 0.1,
    on_spawned: Callable[[ManagedProcess], None] | None = None,
    on_ready: Callable[[ManagedProcess], None] | None = None,
) -> list[ManagedProcess]:
    """Spawn every component at once, then wait until each answers its own probe.

    The start takes as long as the slowest component, not the sum of all. Each gets
    `timeout` seconds from the moment all were spawned. If one exits, stalls or a launcher
    raises — or we are interrupted (Ctrl-C, SIGTERM turned into KeyboardInterrupt) — every
    process spawned here is killed before the error propagates, the ready ones too.
    Returns the processes in the order of `launchers`.
    """
    launched: list[Launch] = []
    try:
        for launcher in launchers:
            launch = launcher()
            launched.append(launch)
            if on_spawned:
                on_spawned(launch.proc)
        pending = list(launched)
        deadline = time.monotonic() + timeout
        while pending:
            for launch in list(pending):
                proc = launch.proc
                if not proc.alive():
                    raise ComponentExitedError(proc.name, proc.port, proc.log_path, proc.log_tail())
                if _answers(launch):
                    pending.remove(launch)
                    if on_ready:
                        on_ready(proc)
            if not pending:
                break
            if time.monotonic() >= deadline:
                proc = pending[0].proc
                raise ComponentNotReadyError(
                    proc.name, proc.port, proc.log_path, proc.log_tail(), timeout
                )
            time.sleep(interval)
    except BaseException:
        for launch in reversed(launched):
            launch.proc.stop(kill=True)
        raise
    return [launch.proc for launch in launched]


def _answers(launch: Launch) -> bool:
    if not port_is_open(launch.proc.host, launch.proc.port):
        return False
    try:
        return launch.probe()
    except Exception:  # noqa: BLE001 - not ready yet; the probe is retried
        return False


def python_argv(*args: str) -> list[str]:
    """argv for a module run by the interpreter running us (the workspace's virtualenv)."""
    return [sys.executable, *args]

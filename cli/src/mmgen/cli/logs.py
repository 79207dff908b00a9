"""`mmgen logs NAME`: print, and with `--follow` keep printing, a local-stack component's log.

`mmgen up` writes every component's output to `<state>/logs/<name>.log` (the broker, the
database, each service, the local witness). The files outlive the processes, so the command
reads them whether the stack is running or not — the log of a service that failed to start is
exactly what an operator wants after `up` gave up.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console

from mmgen.localstack.processes import tail

err = Console(stderr=True)

#: How often a followed log is looked at for new lines.
POLL_SECONDS = 0.25
_READ_CHUNK = 65_536


class UnknownLogError(LookupError):
    """No log of that name in the state folder; the message lists the ones there are."""


def log_names(logs_dir: Path) -> list[str]:
    """The components that have written a log, sorted."""
    return sorted(p.stem for p in logs_dir.glob("*.log")) if logs_dir.is_dir() else []


def log_path(logs_dir: Path, name: str) -> Path:
    """The log file of `name`; the name must be one of `log_names` (no paths, no `..`)."""
    names = log_names(logs_dir)
    if name not in names:
        known = ", ".join(names) or "none: has `mmgen up` run with this --state-dir?"
        raise UnknownLogError(f"no log named {name!r} in {logs_dir} (logs: {known})")
    return logs_dir / f"{name}.log"


def follow(
    path: Path,
    *,
    start: int,
    keep_going: Callable[[], bool] = lambda: True,
    poll: float = POLL_SECONDS,
) -> Iterator[str]:
    """Text appended to `path` from byte offset `start`, as it arrives, while `keep_going()`.

    A file that shrinks (the state was reset, the log truncated) or is replaced is read again
    from its beginning rather than waited on for ever."""
    offset, inode = start, _inode(path)
    while keep_going():
        try:
            size = path.stat().st_size
            current = _inode(path)
        except FileNotFoundError:
            time.sleep(poll)
            continue
        if current != inode or size < offset:
            offset, inode = 0, current
        if size == offset:
            time.sleep(poll)
            continue
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(min(size - offset, _READ_CHUNK))
        offset += len(chunk)
        yield chunk.decode("utf-8", "replace")


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def show(path: Path, lines: int, *, keep_following: bool, out: TextIO | None = None) -> None:
    """The last `lines` lines, then (when following) what is appended until interrupted."""
    out = out or sys.stdout
    start = path.stat().st_size
    last = tail(path, lines) if lines > 0 else ""
    if last:
        out.write(last + "\n")
        out.flush()
    if not keep_following:
        return
    for text in follow(path, start=start):
        out.write(text)
        out.flush()


def logs(
    name: Annotated[str, typer.Argument(help="broker, database, a service (identity, …), witness")],
    state_dir: Annotated[
        Path,
        typer.Option("--state-dir", envvar="MMGEN_STATE_DIR", help="the local stack's state"),
    ] = Path(".mmgen"),
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="lines shown first")] = 50,
    keep_following: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new lines until Ctrl-C")
    ] = False,
) -> None:
    """Show a local-stack component's log (`-f` follows it, as `tail -f`)."""
    try:
        path = log_path(state_dir / "logs", name)
    except UnknownLogError as exc:
        err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    try:
        show(path, lines, keep_following=keep_following)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:  # `mmgen logs x -f | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None

"""The `mmgen` command: run the local stack; further groups add admin and audit tasks."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from mmgen.cli import stack
from mmgen.cli.admin import admin_app
from mmgen.cli.apidocs import app as apidocs_app
from mmgen.cli.audit import app as audit_app
from mmgen.cli.demo import DemoError, demo_app, seed
from mmgen.cli.dlq import app as dlq_app
from mmgen.cli.logs import logs as logs_command
from mmgen.cli.mail import mail_app
from mmgen.cli.privacy import privacy_app
from mmgen.cli.receipt import receipt_app
from mmgen.localstack.errors import LocalStackError

app = typer.Typer(
    help="Multimedia Gen backend: local stack, demo data, audit verification.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin_app, name="admin")
app.add_typer(apidocs_app, name="apidocs")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(dlq_app, name="dlq")
app.add_typer(mail_app, name="mail")
app.add_typer(privacy_app, name="privacy")
app.add_typer(receipt_app, name="receipt")
app.command("logs")(logs_command)
console = Console()
err = Console(stderr=True)
#: Said once everything is ready and Ctrl-C means "stop the stack", no longer "abort the start".
RUNNING = "the stack is running; Ctrl-C stops it"

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="MMGEN_STATE_DIR",
        help="local state: database files, logs, pids, dev secrets",
    ),
]
Host = Annotated[str, typer.Option(envvar="MMGEN_HOST", help="address every component binds")]
BrokerPort = Annotated[int, typer.Option(envvar="MMGEN_BROKER_PORT", min=1, max=65535)]
DatabasePort = Annotated[int, typer.Option(envvar="MMGEN_DATABASE_PORT", min=1, max=65535)]
MailPort = Annotated[
    int,
    typer.Option(envvar="MMGEN_MAIL_PORT", min=1, max=65535, help="the local SMTP sink's port"),
]
ServicePorts = Annotated[
    list[str] | None,
    typer.Option(
        "--port",
        envvar="MMGEN_SERVICE_PORTS",
        help="NAME=PORT for a service, repeatable (env: space-separated)",
    ),
]


def _parse_ports(values: list[str] | None) -> dict[str, int]:
    ports: dict[str, int] = {}
    for value in values or []:
        for item in value.split():
            name, _, port = item.partition("=")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise typer.BadParameter(f"expected NAME=PORT, got {item!r}", param_hint="--port")
            ports[name] = int(port)
    return ports


def _config(
    state_dir: Path,
    host: str,
    broker_port: int,
    database_port: int,
    ports: list[str] | None = None,
    with_services: bool = True,
    ready_timeout: float = 30.0,
    mail_port: int = 2525,
) -> stack.StackConfig:
    return stack.StackConfig(
        state_dir=state_dir,
        host=host,
        broker_port=broker_port,
        database_port=database_port,
        mail_port=mail_port,
        service_ports=_parse_ports(ports),
        with_services=with_services,
        ready_timeout=ready_timeout,
    )


def _status_table(components: list[stack.Component], probe: bool = True) -> Table:
    table = Table(title="mmgen local stack")
    for column in ("component", "address", "pid", "state", "log"):
        table.add_column(column)
    for component in components:
        if not component.is_ours():
            state = "[red]exited[/red]"
        elif probe and component.probe():
            state = "[green]ready[/green]"
        else:
            state = "[yellow]not ready[/yellow]"
        table.add_row(component.name, component.address, str(component.pid), state, component.log)
    return table


@app.command()
def up(
    state_dir: StateDir = Path(".mmgen"),
    host: Host = "127.0.0.1",
    broker_port: BrokerPort = 9092,
    database_port: DatabasePort = 27017,
    mail_port: MailPort = 2525,
    port: ServicePorts = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="return once everything is ready")
    ] = False,
    services: Annotated[bool, typer.Option(help="start the workspace's services too")] = True,
    ready_timeout: Annotated[float, typer.Option(help="seconds each component may take")] = 30.0,
    demo: Annotated[
        bool, typer.Option("--demo", help="seed the demo data set once everything is ready")
    ] = False,
) -> None:
    """Start the broker, the database and every service; stay in the foreground until Ctrl-C."""
    if demo and not services:
        raise typer.BadParameter("the demo data needs the services", param_hint="--demo")
    config = _config(
        state_dir, host, broker_port, database_port, port, services, ready_timeout, mail_port
    )
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def interrupt_start(signum: int, frame: FrameType | None) -> None:
        # SIGTERM while starting: unwind like Ctrl-C, so `stack.up` stops what it started.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt_start)
    try:
        components = stack.up(
            config, on_started=lambda c: err.print(f"started {c.name} on {c.address}")
        )
    except LocalStackError as exc:
        # Log tails may hold anything, brackets included: never read them as markup.
        err.print(
            f"[red]mmgen up failed:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        err.print("interrupted while starting: stopped what had been started")
        raise typer.Exit(130) from None
    if detach:
        console.print(_status_table(components))
        try:
            if demo and not _seed_demo(state_dir):
                raise typer.Exit(1)
        except KeyboardInterrupt:
            err.print("demo seeding interrupted; the stack keeps running (`mmgen down` stops it)")
            raise typer.Exit(130) from None
        return

    try:
        if demo:
            try:
                _seed_demo(state_dir)
            except KeyboardInterrupt:
                stopping = True
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        err.print(RUNNING)
        with Live(_status_table(components), console=console, refresh_per_second=1) as live:
            while not stopping:
                time.sleep(0.5)
                live.update(_status_table(components))
    finally:
        err.print("stopping the local stack…")
        stack.stop_components(components)
        stack.StackRecord(config.record_path).clear()
        err.print("stopped")


def _seed_demo(state_dir: Path) -> bool:
    """Seed after `up`; a failure is reported, the stack keeps running (retry: `mmgen demo`)."""
    try:
        seed(state_dir)
    except DemoError as exc:
        err.print(
            f"[red]demo data not seeded:[/red] {escape(str(exc))}\n"
            "The stack keeps running; try again with `mmgen demo`, stop it with `mmgen down`.",
            highlight=False,
            soft_wrap=True,
        )
        return False
    return True


@app.command()
def status(
    state_dir: StateDir = Path(".mmgen"),
) -> None:
    """Show what the last `mmgen up` started and whether each part answers."""
    components = stack.StackRecord(state_dir / stack.RECORD_FILE).load()
    if not components:
        console.print(f"nothing is running (no stack recorded in {state_dir})")
        raise typer.Exit(3)
    console.print(_status_table(components))
    if not all(c.is_ours() for c in components):
        raise typer.Exit(1)


@app.command()
def down(state_dir: StateDir = Path(".mmgen")) -> None:
    """Stop exactly what `mmgen up` started (by recorded pid); data stays for the next `up`."""
    config = stack.StackConfig(state_dir=state_dir)
    stopped = stack.down(config)
    if not stopped:
        console.print("nothing was running")
        return
    for component in stopped:
        console.print(f"stopped {component.name} (pid {component.pid}, {component.address})")


@app.command()
def reset(
    state_dir: StateDir = Path(".mmgen"),
    yes: Annotated[bool, typer.Option("--yes", help="confirm: wipe all local state")] = False,
) -> None:
    """Wipe local state: database files, logs and generated development secrets."""
    if not yes:
        err.print("refusing to wipe local state without --yes")
        raise typer.Exit(2)
    try:
        stack.reset(stack.StackConfig(state_dir=state_dir))
    except LocalStackError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"removed {state_dir}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def witness(ctx: typer.Context) -> None:
    """A transparency-log witness: `mmgen witness serve|keygen|public-key …` (`--help` there).

    The same as the `mmgen-witness` command of the mmgen-witness package, run in this process's
    place (signals reach it directly)."""
    if importlib.util.find_spec("mmgen.witness") is None:
        err.print("the witness is not installed (the mmgen-witness package)")
        raise typer.Exit(2)
    os.execv(sys.executable, [sys.executable, "-m", "mmgen.witness", *ctx.args])  # noqa: S606


def main() -> None:
    app()

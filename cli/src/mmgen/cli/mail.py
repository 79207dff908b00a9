"""`mmgen mail`: what the local stack's SMTP sink received (verification and reset tokens).

mmgen mail list [--to ADDRESS]
mmgen mail show ID        # an id from `list`, a unique prefix of it, or -1 for the newest
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mmgen.localstack.mailsink import StoredMail, read_message, read_messages

mail_app = typer.Typer(
    help="Mail the local stack sent (kept by its SMTP sink under the state folder).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", envvar="MMGEN_STATE_DIR", help="local state of `mmgen up`"),
]
MailDir = Annotated[
    Path | None,
    typer.Option(
        "--dir", envvar="MMGEN_MAIL_DIR", help="the sink's folder (default: <state>/mail)"
    ),
]
To = Annotated[str | None, typer.Option("--to", help="only messages to this address")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _folder(state_dir: Path, mail_dir: Path | None) -> Path:
    return mail_dir if mail_dir is not None else state_dir / "mail"


def _when(mail: StoredMail) -> str:
    return datetime.fromtimestamp(mail.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _record(mail: StoredMail, with_text: bool = False) -> dict[str, object]:
    record: dict[str, object] = {
        "id": mail.id,
        "received_at": _when(mail),
        "from": mail.mail_from,
        "to": mail.rcpt_to,
        "subject": mail.subject,
    }
    if with_text:
        record["text"] = mail.text()
    return record


@mail_app.command("list")
def list_mail(
    state_dir: StateDir = Path(".mmgen"),
    mail_dir: MailDir = None,
    to: To = None,
    as_json: AsJson = False,
) -> None:
    """Every message received, oldest first."""
    messages = read_messages(_folder(state_dir, mail_dir), to=to)
    if as_json:
        typer.echo(json.dumps([_record(m) for m in messages], indent=2))
        return
    table = Table(title=f"mail received ({len(messages)})")
    for column in ("id", "received (UTC)", "to", "subject"):
        table.add_column(column)
    for mail in messages:
        table.add_row(mail.id, _when(mail), ", ".join(mail.rcpt_to), mail.subject)
    console.print(table)


@mail_app.command("show")
def show_mail(
    message_id: Annotated[str, typer.Argument(help="id (or a unique prefix), or -1: the newest")],
    state_dir: StateDir = Path(".mmgen"),
    mail_dir: MailDir = None,
    to: To = None,
    as_json: AsJson = False,
) -> None:
    """One message: its headers and text (the token is in the text)."""
    folder = _folder(state_dir, mail_dir)
    mail: StoredMail | None
    if to is not None and message_id.startswith("-") and message_id[1:].isdigit():
        mine = read_messages(folder, to=to)
        index = int(message_id)
        mail = mine[index] if -len(mine) <= index < 0 else None
    else:
        mail = read_message(folder, message_id)
    if mail is None:
        err.print(f"no single message {message_id!r} in {folder}")
        raise typer.Exit(code=1)
    if as_json:
        typer.echo(json.dumps(_record(mail, with_text=True), indent=2))
        return
    typer.echo(f"From: {mail.mail_from}\nTo: {', '.join(mail.rcpt_to)}")
    typer.echo(f"Date: {_when(mail)} UTC\nSubject: {mail.subject}\n")
    typer.echo(mail.text())

"""`mmgen-witness`: run a witness, make its key, print its public key.

Every option falls back to its `WITNESS_*` environment variable (see `settings.py`), so the
same command runs under a process manager with only an environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from mmgen.platform.app import serve as serve_app
from mmgen.platform.errors import ConfigurationError
from mmgen.witness.app import build_app
from mmgen.witness.settings import DEFAULT_NAME, WitnessSettings, generate_signing_key
from mmgen.witness.store import WitnessStoreError

app = typer.Typer(
    help="A transparency-log witness (C2SP tlog-witness): cosigns a log's checkpoints.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings(**given: Any) -> WitnessSettings:
    overrides = {name: value for name, value in given.items() if value is not None}
    try:
        return WitnessSettings(**overrides)
    except ValidationError as exc:
        typer.echo(f"invalid witness settings:\n{exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    log_key: Annotated[
        list[str] | None,
        typer.Option("--log-key", help="verifier key of a log to witness (repeatable)"),
    ] = None,
    signing_key: Annotated[
        str | None,
        typer.Option("--signing-key", help="the witness key, or @FILE holding it (see keygen)"),
    ] = None,
    store_dir: Annotated[
        Path | None, typer.Option("--store-dir", help="folder of the witness's state")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="address to bind")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535)] = None,
    name: Annotated[str | None, typer.Option("--name", help="name for a bare-seed key")] = None,
) -> None:
    """Serve `POST /add-checkpoint` until stopped."""
    settings = _settings(
        log_keys=tuple(log_key) if log_key else None,
        signing_key=signing_key,
        store_dir=store_dir,
        host=host,
        port=port,
        name=name,
    )
    if not settings.log_keys:
        typer.echo("no log to witness: give --log-key (or WITNESS_LOG_KEYS)", err=True)
        raise typer.Exit(2)
    try:
        settings.signer()
        settings.store_path()
        serve_app(build_app(settings), settings)
    except (ConfigurationError, WitnessStoreError) as exc:
        typer.echo(f"cannot start the witness: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def keygen(
    name: Annotated[str, typer.Option("--name", help="the witness's name (a URL)")] = DEFAULT_NAME,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the secret key here (mode 0600)")
    ] = None,
) -> None:
    """Make a witness key: the secret for WITNESS_SIGNING_KEY and the public key to publish."""
    skey = generate_signing_key(name)
    settings = _settings(signing_key=skey)
    vkey = settings.signer().verifier().to_string()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch(mode=0o600, exist_ok=False)
        out.write_text(skey + "\n")
        typer.echo(f"secret key written to {out} (WITNESS_SIGNING_KEY=@{out})")
    else:
        typer.echo(f"WITNESS_SIGNING_KEY={skey}")
    typer.echo(f"public key (publish it; verifiers pin it): {vkey}")


@app.command("public-key")
def public_key(
    signing_key: Annotated[
        str | None, typer.Option("--signing-key", help="the witness key, or @FILE")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Print the public (verifier) key of the configured witness key."""
    settings = _settings(signing_key=signing_key, name=name)
    try:
        typer.echo(settings.signer().verifier().to_string())
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc


def main() -> None:
    app(prog_name="mmgen-witness")

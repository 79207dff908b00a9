"""`mmgen-verify`: verify the audit log offline, check inclusion proofs and erasure receipts,
follow the live tail — as compliance staff or an outside auditor, without trusting the server.

The log's public key is PINNED (`--public-key`, or `@FILE`, obtained out of band — never
fetched from the server being checked); every entry is re-hashed and chained locally; the
Merkle root is recomputed and compared with a signed head; a head saved on an earlier run
must be extended by the log (a server that rewrote history fails there even with a validly
signed new head); with `--witness-key … --quorum N`, a head counts only with N cosignatures
of those independent witnesses (a server that shows different histories to different people
cannot get both witnessed).

Exit codes: 0 verified; 1 verification failed (tampering, inconsistency, bad proof, too few
witnesses); 2 could not check (usage, network, HTTP error).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mmgen.auditlog.checkpoint import Checkpoint, parse_note
from mmgen.auditlog.errors import AuditLogError
from mmgen.verifier.checks import DEFAULT_PURPOSE, Verdict, verify_export_file
from mmgen.verifier.keys import CheckFailedError, TrustedKeys

# The HTTP client (httpx) is imported by the commands that talk to a server only: offline
# verification of an export starts faster without it.

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2

console = Console()
err = Console(stderr=True)

Url = Annotated[
    str | None, typer.Option("--url", envvar="MMGEN_AUDIT_URL", help="consent service base URL")
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="MMGEN_AUDIT_TOKEN", help="compliance bearer token")
]
PublicKey = Annotated[
    str,
    typer.Option(
        "--public-key",
        envvar="MMGEN_AUDIT_PUBLIC_KEY",
        help="pinned C2SP verifier key of the log (<name>+<id>+<key>) or @FILE holding it",
    ),
]
WitnessKeys = Annotated[
    list[str] | None,
    typer.Option(
        "--witness-key",
        envvar="MMGEN_AUDIT_WITNESS_KEYS",
        help="pinned witness verifier key or @FILE (repeatable; env: space-separated)",
    ),
]
Quorum = Annotated[
    int | None,
    typer.Option(
        "--quorum",
        envvar="MMGEN_AUDIT_QUORUM",
        min=0,
        help="cosignatures of distinct given witnesses a head needs (default: all of them)",
    ),
]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="declared X-Purpose")]


def trusted_keys(public_key: str, witness_key: list[str] | None, quorum: int | None) -> TrustedKeys:
    return TrustedKeys.of(public_key, witness_key or (), quorum)


def report(verdict: Verdict, as_json: bool) -> int:
    if as_json:
        console.print_json(json.dumps(verdict.to_json()))
    elif verdict.valid:
        console.print(
            f"[bold green]VALID[/] {verdict.checked} entries checked; chain intact"
            + (
                f"; Merkle root matches the signed head of size {verdict.checkpoint_size}"
                if verdict.checkpoint_size
                else ""
            )
            + (
                f"; cosigned by {len(verdict.witnesses)} pinned witness(es): "
                + ", ".join(verdict.witnesses)
                if verdict.witnesses
                else ""
            )
            + ("; consistent with the saved head" if verdict.consistent_with_saved else "")
        )
    else:
        where = f" at seq {verdict.first_bad_seq}" if verdict.first_bad_seq is not None else ""
        console.print(f"[bold red]INVALID[/]{where}: {verdict.reason} ({verdict.code})")
        console.print(f"{verdict.checked} entries passed before the failure")
    for note in verdict.notes:
        err.print(f"[yellow]note:[/] {note}")
    return EXIT_OK if verdict.valid else EXIT_INVALID


def _claimed_size(note: str | None) -> int | None:
    """The head's size for the progress bar (display only: the head is verified elsewhere)."""
    try:
        return Checkpoint.from_text(parse_note(note).text).size if note else None
    except AuditLogError:
        return None


def verify(
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
    witness_key: WitnessKeys = None,
    quorum: Quorum = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="export (JSON Lines) instead of the API")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="signed head (note text) for --file")
    ] = None,
    saved_head: Annotated[
        Path | None,
        typer.Option("--saved-head", help="a head saved earlier: the log must extend it"),
    ] = None,
    save_head: Annotated[
        Path | None, typer.Option("--save-head", help="write the verified head here for next time")
    ] = None,
    purpose: PurposeOpt = DEFAULT_PURPOSE,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable verdict")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="processes checking a large --file (default: the CPUs)"
        ),
    ] = None,
) -> None:
    """Verify the whole log: chain, Merkle root against a trusted signed head, consistency
    with a saved head."""
    note: str | None = None
    try:
        trusted = trusted_keys(public_key, witness_key, quorum)
        saved_note = saved_head.read_text() if saved_head else None
        # Redrawn 4 times a second (rich's default is 10): the redraws take the CPU the
        # verification needs, more the longer a loaded host makes the run.
        with Progress(
            TextColumn("[bold]verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err, transient=True, disable=as_json, refresh_per_second=4,
        ) as bar:  # fmt: skip
            task = bar.add_task("entries", total=None)

            def advance(n: int) -> None:
                bar.advance(task, n)

            if file is not None:
                if checkpoint is None and trusted.quorum:
                    raise CheckFailedError("--quorum needs --checkpoint: the head to check")
                note = checkpoint.read_text() if checkpoint else None
                bar.update(task, total=_claimed_size(note))
                verdict = verify_export_file(
                    file,
                    key=trusted,
                    checkpoint_note=note,
                    saved_note=saved_note,
                    progress=advance,
                    workers=workers,
                )
            else:
                from mmgen.verifier.checks import verify_via_api
                from mmgen.verifier.client import open_client

                async def run() -> tuple[Verdict, str]:
                    async with open_client(url, token) as client:
                        return await verify_via_api(
                            client, trusted, saved_note=saved_note, purpose=purpose,
                            progress=advance, on_total=lambda n: bar.update(task, total=n),
                        )  # fmt: skip

                verdict, note = asyncio.run(run())
    except (CheckFailedError, OSError) as exc:
        err.print(f"[bold red]cannot verify:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    code = report(verdict, as_json)
    if code == EXIT_OK and save_head is not None and note:
        save_head.write_text(note)
        err.print(f"saved the verified head to {save_head}")
    raise typer.Exit(code)


def proof(
    seq: Annotated[int, typer.Option("--seq", min=0, help="entry to prove")],
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
    witness_key: WitnessKeys = None,
    quorum: Quorum = None,
    purpose: PurposeOpt = DEFAULT_PURPOSE,
) -> None:
    """Fetch and verify the inclusion proof of one entry in the latest trusted signed head."""
    from mmgen.verifier.checks import check_inclusion
    from mmgen.verifier.client import open_client

    async def run() -> dict[str, Any]:
        async with open_client(url, token) as client:
            trusted = trusted_keys(public_key, witness_key, quorum)
            return await check_inclusion(client, trusted, seq, purpose)

    try:
        outcome = asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot check:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except AuditLogError as exc:
        console.print(f"[bold red]INVALID[/] inclusion of seq {seq}: {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    witnesses = outcome["witnesses"]
    console.print(
        f"[bold green]VALID[/] entry {seq} is in the signed tree of size {outcome['tree_size']} "
        f"({len(outcome['proof']['hashes'])} proof hashes)"
        + (f"; head cosigned by {', '.join(witnesses)}" if witnesses else "")
    )
    console.print_json(json.dumps(outcome["entry"]))


def tail(
    url: Url = None,
    token: Token = None,
    start: Annotated[int | None, typer.Option("--from", min=0, help="start at this seq")] = None,
    purpose: PurposeOpt = DEFAULT_PURPOSE,
) -> None:
    """Follow the live audit log (server-sent events), resuming after disconnects."""
    from mmgen.verifier.client import follow, open_client

    def show(entry: dict[str, Any]) -> None:
        console.print(
            f"{entry['seq']:>8} {entry['recorded_at']} {entry['producer']:<10} "
            f"{entry['action']:<7} {entry['event_type']} "
            f"subject={entry['subject_id']} actor={entry['actor_id']}",
            highlight=False,
        )

    async def run() -> None:
        async with open_client(url, token) as client:
            await follow(client, show, start=start, purpose=purpose)

    try:
        asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot follow:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except KeyboardInterrupt:
        pass


def export(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write")],
    url: Url = None,
    token: Token = None,
    purpose: PurposeOpt = DEFAULT_PURPOSE,
) -> None:
    """Download the entries covered by the latest signed head, plus that head (OUT.checkpoint,
    with every signature line) — then `verify --file OUT --checkpoint OUT.checkpoint`."""
    from mmgen.verifier.client import AuditApi, open_client

    async def run() -> int:
        async with open_client(url, token) as client:
            api = AuditApi(client, purpose)
            latest = await api.get("/audit/checkpoints/latest")
            n = 0
            with out.open("w") as stream:
                async for page in api.pages(latest["tree_size"]):
                    stream.write(
                        "".join(
                            json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n"
                            for e in page
                        )
                    )
                    n += len(page)
            out.with_suffix(out.suffix + ".checkpoint").write_text(latest["note"])
            return n

    try:
        n = asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot export:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    console.print(f"wrote {n} entries to {out} and the signed head to {out}.checkpoint")


receipt_app = typer.Typer(help="Signed erasure receipts.", no_args_is_help=True)


@receipt_app.command("verify")
def receipt_verify(
    receipt: Annotated[Path, typer.Argument(help="the receipt (compact JWS) in a file")],
    jwks: Annotated[
        str,
        typer.Option(
            "--jwks",
            envvar="MMGEN_RECEIPT_JWKS",
            help="retention's key set: a file, or its /.well-known/jwks.json URL",
        ),
    ],
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
    witness_key: WitnessKeys = None,
    quorum: Quorum = None,
    purpose: PurposeOpt = DEFAULT_PURPOSE,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable verdict")] = False,
) -> None:
    """Check an erasure receipt: its signature, and each erasure's entry in the audit log,
    proved against the (pinned-key-signed) checkpoint inside the receipt."""
    from mmgen.verifier.client import AuditApi, open_client
    from mmgen.verifier.receipts import check_receipt, load_jwks, read_token

    async def run() -> Any:
        token_text = read_token(receipt)
        keys = load_jwks(jwks)
        trusted = trusted_keys(public_key, witness_key, quorum)
        async with open_client(url, token) as client:
            return await check_receipt(token_text, keys, trusted, AuditApi(client, purpose))

    try:
        outcome = asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot check:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    if as_json:
        console.print_json(json.dumps(outcome.to_json()))
    elif outcome.valid:
        services = ", ".join(s.service for s in outcome.receipt.services)
        console.print(
            f"[bold green]VALID[/] erasure receipt {outcome.receipt.request_id}: signed by "
            f"retention; every erasure ({services}) is in the audit log's signed head of size "
            f"{outcome.receipt.checkpoint.tree_size}"
        )
    else:
        console.print(f"[bold red]INVALID[/] receipt ({outcome.code}): {outcome.reason}")
    raise typer.Exit(EXIT_OK if outcome.valid else EXIT_INVALID)


def build_app(**typer_options: Any) -> typer.Typer:
    """The verification commands as one Typer app (the `mmgen audit` group adds its own)."""
    app = typer.Typer(no_args_is_help=True, **typer_options)
    for command in (verify, proof, tail, export):
        app.command()(command)
    return app


app = build_app(help="Verify the tamper-evident audit log, trusting only pinned keys.")
app.add_typer(receipt_app, name="receipt")


def main() -> None:
    app(prog_name="mmgen-verify")

"""`mmgen audit`: verify the audit log offline, check inclusion proofs, follow the live tail.

For compliance staff, and built so that they need not trust the server: the log's public key
is PINNED (given on the command line or from a file, obtained out of band — never fetched
from the server being checked), every entry is re-hashed and chained locally, the Merkle root
is recomputed from the entries and compared with a signed head, and a head saved on an
earlier run is checked for consistency (the new log must extend it: a server that rewrote
history fails here even if its new head is validly signed).

Exit codes: 0 verified; 1 verification failed (tampering, inconsistency, bad proof);
2 could not check (usage, network, HTTP error).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mmgen.auditlog.checkpoint import NoteSigner, NoteVerifier, open_checkpoint
from mmgen.auditlog.errors import AuditLogError
from mmgen.auditlog.merkle import Frontier
from mmgen.auditlog.verify import (
    LogVerifier,
    iter_jsonl,
    verify_checkpoint_consistency,
    verify_entry_inclusion,
)

app = typer.Typer(help="Verify the tamper-evident audit log (compliance).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
PAGE = 500

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
        help="pinned C2SP verifier key (<name>+<id>+<key>) or @FILE holding it",
    ),
]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="declared X-Purpose")]


class CheckFailedError(Exception):
    """Verification could not be carried out (network, HTTP, input): exit code 2."""


@dataclass
class Verdict:
    """Outcome of `verify`: what was checked and the first failure, if any."""

    valid: bool
    checked: int = 0
    tree_size: int = 0
    first_bad_seq: int | None = None
    code: str | None = None
    reason: str | None = None
    checkpoint_size: int | None = None
    consistent_with_saved: bool | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "tree_size": self.tree_size,
            "first_bad_seq": self.first_bad_seq,
            "code": self.code,
            "reason": self.reason,
            "checkpoint_size": self.checkpoint_size,
            "consistent_with_saved": self.consistent_with_saved,
        }


def load_key(value: str) -> NoteVerifier:
    text = Path(value[1:]).read_text().strip() if value.startswith("@") else value.strip()
    try:
        return NoteVerifier.from_string(text)
    except AuditLogError as exc:
        raise CheckFailedError(f"bad public key: {exc}") from exc


class AuditApi:
    """The few `/audit` calls the CLI makes (an `httpx.AsyncClient` with the bearer token)."""

    def __init__(self, client: httpx.AsyncClient, purpose: str = "legal_compliance") -> None:
        self.client = client
        self.headers = {"X-Purpose": purpose}

    async def get(self, path: str, **params: Any) -> Any:
        try:
            response = await self.client.get(path, params=params or None, headers=self.headers)
        except httpx.HTTPError as exc:
            raise CheckFailedError(f"GET {path}: {exc}") from exc
        if response.status_code != 200:
            raise CheckFailedError(f"GET {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    async def entries(self, upto: int) -> AsyncIterator[dict[str, Any]]:
        """Entries 0..upto-1 in seq order, page by page."""
        cursor: str | None = None
        got = 0
        while got < upto:
            params: dict[str, Any] = {"limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            page = await self.get("/audit/entries", **params)
            for item in page["items"]:
                if got >= upto:
                    return
                yield item
                got += 1
            cursor = page.get("next_cursor")
            if not cursor:
                return


async def verify_entries(
    entries: AsyncIterator[dict[str, Any]] | Iterator[Any],
    *,
    key: NoteVerifier,
    checkpoint_note: str | None,
    saved_note: str | None,
    total: int | None = None,
    api: AuditApi | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Check the chain and the Merkle root of `entries` (from seq 0) against a signed head,
    and that the log extends a previously saved head."""
    try:
        checkpoint = open_checkpoint(checkpoint_note, key) if checkpoint_note else None
        saved = open_checkpoint(saved_note, key) if saved_note else None
    except AuditLogError as exc:
        return Verdict(False, code="checkpoint_invalid", reason=f"signed head refused: {exc}")
    verifier = LogVerifier(frontier=Frontier(0), checkpoint=checkpoint)
    verdict = Verdict(True)
    saved_checked = saved is not None and saved.size == 0

    def feed(entry: Any) -> bool:
        nonlocal saved_checked
        ok = verifier.feed(entry)
        if ok and saved is not None and verifier.tree_size == saved.size:
            saved_checked = True
            if verifier.root() != saved.root_hash:
                verdict.consistent_with_saved = False
        if progress is not None:
            progress(1)
        return ok

    if isinstance(entries, Iterator):
        try:
            for entry in entries:
                if not feed(entry):
                    break
        except ValueError as exc:
            verifier.fail_unreadable(f"unreadable export line: {exc}")
    else:
        async for entry in entries:
            if not feed(entry):
                break
    result = verifier.result()
    verdict.valid = result.valid
    verdict.checked = result.checked
    verdict.tree_size = result.tree_size
    verdict.first_bad_seq = result.first_bad_seq
    verdict.code, verdict.reason = result.code, result.reason
    verdict.checkpoint_size = checkpoint.size if checkpoint else None
    if checkpoint is None:
        verdict.notes.append("no signed head given: chain checked, Merkle root not compared")
    if saved is not None:
        if verdict.consistent_with_saved is None and saved_checked:
            verdict.consistent_with_saved = True
        if not saved_checked and result.valid:
            verdict.consistent_with_saved = False
            verdict.notes.append(
                f"the log ({result.tree_size}) is shorter than the saved head ({saved.size})"
            )
        if api is not None and checkpoint is not None and saved.size <= checkpoint.size:
            proof = await api.get(
                "/audit/proofs/consistency", first=saved.size, second=checkpoint.size
            )
            assert saved_note is not None and checkpoint_note is not None
            outcome = verify_checkpoint_consistency(saved_note, checkpoint_note, proof, key)
            if not outcome.valid:
                verdict.consistent_with_saved = False
                verdict.notes.append(f"server's consistency proof refused: {outcome.reason}")
        if verdict.consistent_with_saved is False:
            verdict.valid = False
            verdict.code = verdict.code or "inconsistent_with_saved_head"
            verdict.reason = verdict.reason or (
                f"the log does not extend the saved head of size {saved.size}: "
                "history was rewritten"
            )
    return verdict


async def verify_via_api(
    client: httpx.AsyncClient,
    key: NoteVerifier,
    *,
    saved_note: str | None = None,
    purpose: str = "legal_compliance",
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[Verdict, str]:
    """Download the latest signed head and every entry it covers, and verify them."""
    api = AuditApi(client, purpose)
    latest = await api.get("/audit/checkpoints/latest")
    note = latest["note"]
    try:
        size = open_checkpoint(note, key).size
    except AuditLogError as exc:
        return Verdict(False, code="checkpoint_invalid", reason=f"signed head refused: {exc}"), note
    if on_total is not None:
        on_total(size)
    verdict = await verify_entries(
        api.entries(size),
        key=key,
        checkpoint_note=note,
        saved_note=saved_note,
        total=size,
        api=api,
        progress=progress,
    )
    return verdict, note


async def check_inclusion(
    client: httpx.AsyncClient, key: NoteVerifier, seq: int, purpose: str
) -> dict[str, Any]:
    """Fetch entry `seq`, the latest signed head and the inclusion proof; verify locally."""
    api = AuditApi(client, purpose)
    latest = await api.get("/audit/checkpoints/latest")
    checkpoint = open_checkpoint(latest["note"], key)
    if seq >= checkpoint.size:
        raise CheckFailedError(
            f"seq {seq} is not covered by the latest signed head ({checkpoint.size})"
        )
    entry = await api.get(f"/audit/entries/{seq}")
    proof = await api.get("/audit/proofs/inclusion", seq=seq, tree_size=checkpoint.size)
    verify_entry_inclusion(entry, proof, checkpoint)
    return {"seq": seq, "tree_size": checkpoint.size, "entry": entry, "proof": proof}


def _client(url: str | None, token: str | None) -> httpx.AsyncClient:
    if not url or not token:
        raise CheckFailedError(
            "--url and --token are required (or MMGEN_AUDIT_URL / MMGEN_AUDIT_TOKEN)"
        )
    return httpx.AsyncClient(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _report(verdict: Verdict, as_json: bool) -> int:
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
            + ("; consistent with the saved head" if verdict.consistent_with_saved else "")
        )
    else:
        where = f" at seq {verdict.first_bad_seq}" if verdict.first_bad_seq is not None else ""
        console.print(f"[bold red]INVALID[/]{where}: {verdict.reason} ({verdict.code})")
        console.print(f"{verdict.checked} entries passed before the failure")
    for note in verdict.notes:
        err.print(f"[yellow]note:[/] {note}")
    return EXIT_OK if verdict.valid else EXIT_INVALID


@app.command()
def verify(
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
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
    purpose: PurposeOpt = "legal_compliance",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable verdict")] = False,
) -> None:
    """Verify the whole log: chain, Merkle root against a signed head, consistency with a
    saved head."""
    try:
        key = load_key(public_key)
        saved_note = saved_head.read_text() if saved_head else None
        with Progress(
            TextColumn("[bold]verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err, transient=True, disable=as_json,
        ) as bar:  # fmt: skip
            task = bar.add_task("entries", total=None)
            advance = lambda n: bar.advance(task, n)  # noqa: E731
            if file is not None:
                note = checkpoint.read_text() if checkpoint else None
                with file.open("rb") as stream:
                    verdict = asyncio.run(
                        verify_entries(
                            iter_jsonl(stream),
                            key=key,
                            checkpoint_note=note,
                            saved_note=saved_note,
                            progress=advance,
                        )
                    )
            else:

                async def run() -> tuple[Verdict, str]:
                    async with _client(url, token) as client:
                        return await verify_via_api(
                            client, key, saved_note=saved_note, purpose=purpose, progress=advance,
                            on_total=lambda n: bar.update(task, total=n),
                        )  # fmt: skip

                verdict, note = asyncio.run(run())
    except (CheckFailedError, OSError) as exc:
        err.print(f"[bold red]cannot verify:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    code = _report(verdict, as_json)
    if code == EXIT_OK and save_head is not None and note:
        save_head.write_text(note)
        err.print(f"saved the verified head to {save_head}")
    raise typer.Exit(code)


@app.command()
def proof(
    seq: Annotated[int, typer.Option("--seq", min=0, help="entry to prove")],
    public_key: PublicKey,
    url: Url = None,
    token: Token = None,
    purpose: PurposeOpt = "legal_compliance",
) -> None:
    """Fetch and verify the inclusion proof of one entry in the latest signed head."""

    async def run() -> dict[str, Any]:
        async with _client(url, token) as client:
            return await check_inclusion(client, load_key(public_key), seq, purpose)

    try:
        outcome = asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot check:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except AuditLogError as exc:
        console.print(f"[bold red]INVALID[/] inclusion of seq {seq}: {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    console.print(
        f"[bold green]VALID[/] entry {seq} is in the signed tree of size {outcome['tree_size']} "
        f"({len(outcome['proof']['hashes'])} proof hashes)"
    )
    console.print_json(json.dumps(outcome["entry"]))


async def follow(
    client: httpx.AsyncClient,
    on_entry: Callable[[dict[str, Any]], None],
    *,
    start: int | None = None,
    limit: int | None = None,
    purpose: str = "legal_compliance",
) -> int | None:
    """Follow `/audit/stream`; reconnect with `Last-Event-ID` after a drop. Returns the last seq."""
    last: int | None = None if start is None else start - 1
    received = 0
    while limit is None or received < limit:
        headers = {"X-Purpose": purpose, "Accept": "text/event-stream"}
        params: dict[str, Any] = {}
        if last is not None and last >= 0:
            headers["Last-Event-ID"] = str(last)
        elif start is not None:
            params["from"] = start
        if limit is not None:
            params["limit"] = limit - received
        try:
            async with client.stream(
                "GET", "/audit/stream", headers=headers, params=params, timeout=None
            ) as response:
                if response.status_code != 200:
                    raise CheckFailedError(f"HTTP {response.status_code}")
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line.startswith("id:"):
                        last = int(line[3:].strip())
                    elif line == "" and data:
                        on_entry(json.loads("\n".join(data)))
                        data = []
                        received += 1
                if limit is not None:
                    return last
        except httpx.TransportError:
            await asyncio.sleep(1.0)
    return last


@app.command()
def tail(
    url: Url = None,
    token: Token = None,
    start: Annotated[int | None, typer.Option("--from", min=0, help="start at this seq")] = None,
    purpose: PurposeOpt = "legal_compliance",
) -> None:
    """Follow the live audit log (server-sent events), resuming after disconnects."""

    def show(entry: dict[str, Any]) -> None:
        console.print(
            f"{entry['seq']:>8} {entry['recorded_at']} {entry['producer']:<10} "
            f"{entry['action']:<7} {entry['event_type']} "
            f"subject={entry['subject_id']} actor={entry['actor_id']}"
        )

    async def run() -> None:
        async with _client(url, token) as client:
            await follow(client, show, start=start, purpose=purpose)

    try:
        asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot follow:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except KeyboardInterrupt:
        pass


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write")],
    url: Url = None,
    token: Token = None,
    purpose: PurposeOpt = "legal_compliance",
) -> None:
    """Download the entries covered by the latest signed head, plus that head (OUT.checkpoint)."""

    async def run() -> int:
        async with _client(url, token) as client:
            api = AuditApi(client, purpose)
            latest = await api.get("/audit/checkpoints/latest")
            n = 0
            with out.open("w") as stream:
                async for entry in api.entries(latest["tree_size"]):
                    stream.write(json.dumps(entry, separators=(",", ":")) + "\n")
                    n += 1
            out.with_suffix(out.suffix + ".checkpoint").write_text(latest["note"])
            return n

    try:
        n = asyncio.run(run())
    except CheckFailedError as exc:
        err.print(f"[bold red]cannot export:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    console.print(f"wrote {n} entries to {out} and the signed head to {out}.checkpoint")


@app.command()
def keygen(
    origin: Annotated[
        str, typer.Option("--origin", help="log origin = key name")
    ] = "mmgen.local/audit",
) -> None:
    """Print a new signing key (secret: CONSENT_AUDIT_SIGNING_KEY) and its public verifier key."""
    signer = NoteSigner.generate(origin)
    console.print(f"CONSENT_AUDIT_SIGNING_KEY={signer.to_string()}", soft_wrap=True)
    console.print(f"public key (pin it): {signer.verifier().to_string()}", soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

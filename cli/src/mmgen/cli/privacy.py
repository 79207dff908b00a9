"""`mmgen privacy`: privacy requests for compliance staff — list, show, export.

Against the retention service (`--url` / `MMGEN_RETENTION_URL`) with a compliance token
(`--token` / `MMGEN_RETENTION_TOKEN`), declaring `X-Purpose: legal_compliance`; every read is
recorded by retention as the officer's. `export` writes what a request produced: an erasure's
signed receipt (check it with `mmgen receipt verify`), or an access package with its JSON
Schema (retention hands a package to its requester only, e.g. staff who filed it on the
subject's behalf).

Exit codes: 0 done; 1 the service refused or has nothing yet (the problem is printed); 2 could
not ask (usage, network).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

privacy_app = typer.Typer(help="Privacy requests (compliance): list, show, export.")
console = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
PAGE = 100

Url = Annotated[
    str | None,
    typer.Option("--url", envvar="MMGEN_RETENTION_URL", help="retention service base URL"),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="MMGEN_RETENTION_TOKEN", help="compliance bearer token"),
]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


class PrivacyCliError(Exception):
    """The request could not be made (exit 2)."""


class Refused(Exception):
    """The service answered with a problem (exit 1)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.status, self.problem = status, problem


class RetentionApi:
    """The calls the CLI makes, with the token and the declared purpose."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = await self.client.get(
                path,
                params={k: v for k, v in params.items() if v is not None} or None,
                headers={"X-Purpose": "legal_compliance"},
            )
        except httpx.HTTPError as exc:
            raise PrivacyCliError(f"GET {path}: {exc}") from exc
        if response.status_code != 200:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:300]}
            raise Refused(response.status_code, problem)
        return response

    async def requests(
        self, *, status: str | None, overdue: bool, limit: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        seen = 0
        while limit is None or seen < limit:
            page = (
                await self.get(
                    "/privacy-requests",
                    status=status,
                    overdue="true" if overdue else None,
                    limit=PAGE,
                    cursor=cursor,
                )
            ).json()
            for item in page["items"]:
                if limit is not None and seen >= limit:
                    return
                yield item
                seen += 1
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _client(url: str | None, token: str | None) -> httpx.AsyncClient:
    if not url or not token:
        raise PrivacyCliError(
            "--url and --token are required (or MMGEN_RETENTION_URL / MMGEN_RETENTION_TOKEN)"
        )
    return httpx.AsyncClient(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except PrivacyCliError as exc:
        err.print(f"[bold red]cannot ask:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from exc
    except Refused as exc:
        err.print(f"[bold red]refused ({exc.status}):[/] {exc}")
        raise typer.Exit(EXIT_REFUSED) from exc


def _waiting_for(item: dict[str, Any]) -> str:
    return ", ".join(
        f"{p['service']} ({p['state']})"
        for p in item.get("progress") or []
        if p["state"] not in ("clean", "exported")
    )


@privacy_app.command("list")
def list_requests(
    url: Url = None,
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="only requests in this status")] = None,
    overdue: Annotated[bool, typer.Option(help="only requests past their deadline")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many")] = None,
    as_json: AsJson = False,
) -> None:
    """Privacy requests: id, type, status, deadline, and which services are still awaited."""

    async def run() -> list[dict[str, Any]]:
        async with _client(url, token) as client:
            api = RetentionApi(client)
            return [r async for r in api.requests(status=status, overdue=overdue, limit=limit)]

    items = _run(run())
    if as_json:
        console.print_json(json.dumps(items))
        return
    table = Table("request", "type", "status", "subject", "due on", "waiting for")
    for item in items:
        due = item["deadline"]["due_on"] + (" OVERDUE" if item["deadline"]["overdue"] else "")
        table.add_row(
            item["request_id"], item["type"], item["status"], item["subject_id"], due,
            _waiting_for(item),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(items)} request(s)")


@privacy_app.command("show")
def show_request(
    request_id: Annotated[str, typer.Argument(help="the privacy request's id")],
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """One request: status, deadline, timeline, acknowledgements, progress, holds."""

    async def run() -> dict[str, Any]:
        async with _client(url, token) as client:
            body: dict[str, Any] = (
                await RetentionApi(client).get(f"/privacy-requests/{request_id}")
            ).json()
            return body

    item = _run(run())
    if as_json:
        console.print_json(json.dumps(item))
        return
    deadline = item["deadline"]
    console.print(
        f"[bold]{item['type']}[/] request {item['request_id']} of subject {item['subject_id']}: "
        f"[bold]{item['status']}[/], due {deadline['due_on']}"
        + (" [red]OVERDUE[/]" if deadline["overdue"] else "")
    )
    for step in item["timeline"]:
        console.print(f"  {step['at']}  {step['step']:<20} {json.dumps(step['detail'])}")
    for progress in item.get("progress") or []:
        console.print(f"  {progress['service']:<10} {progress['state']:<12} {progress['detail']}")
    for held in item["held"]:
        console.print(f"  held: {held['category']} ({held['legal_basis']}; hold {held['hold_id']})")


@privacy_app.command("export")
def export_request(
    request_id: Annotated[str, typer.Argument(help="the privacy request's id")],
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Write what the request produced: an erasure's receipt (JWS), or an access package."""

    async def run() -> tuple[str, str]:
        async with _client(url, token) as client:
            api = RetentionApi(client)
            item = (await api.get(f"/privacy-requests/{request_id}")).json()
            if item["type"] == "erasure":
                receipt = await api.get(f"/privacy-requests/{request_id}/receipt")
                return "erasure receipt", receipt.text.strip() + "\n"
            if item["type"] == "access":
                package = await api.get(f"/privacy-requests/{request_id}/export")
                return "access package (with its JSON Schema)", json.dumps(package.json(), indent=2)
            raise Refused(409, {"detail": f"a {item['type']} request produces nothing to export"})

    what, content = _run(run())
    out.write_text(content)
    console.print(f"wrote the {what} of {request_id} to {out}")

"""`mmgen apidocs`: the committed API documents, taken from what each service serves.

Every service of the workspace (the `mmgen.services` entry points) is built with its own
factory and default settings, as the local stack has them — no database or broker is
reached — and asked, in-process, for `/openapi.json` and `/asyncapi.json` (services on the
runtime serve the latter). The answers
are written to `docs/openapi/<service>.json` and `docs/asyncapi/<service>.json`; the drift
tests (tests/test_api_documents.py) fail when the code and those files part, and
`make openapi` (`mmgen apidocs write`) makes them agree again in one command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from mmgen.cli.stack import SERVICE_ENTRY_POINTS, discover_services

KINDS = ("openapi", "asyncapi")

app = typer.Typer(help="The committed OpenAPI and AsyncAPI documents.", no_args_is_help=True)


@dataclass(frozen=True)
class ServedDocuments:
    service: str
    #: kind ("openapi", "asyncapi") → document; a kind the service does not serve is absent
    documents: dict[str, dict[str, Any]]


@contextlib.contextmanager
def local_stack_settings(service: str) -> Iterator[None]:
    """The service's default settings as the local stack has them: development on loopback
    with a state folder (a throwaway one), the only place development secrets are accepted
    (a service refuses to start with them anywhere else)."""
    variable = f"{service.upper()}_STATE_DIR"
    before = os.environ.get(variable)
    with tempfile.TemporaryDirectory(prefix=f"apidocs-{service}-") as state:
        os.environ[variable] = state
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = before


def build_app(service: str) -> Any:
    """The service's app from its registered factory (default settings, nothing started)."""
    (entry,) = [ep for ep in entry_points(group=SERVICE_ENTRY_POINTS) if ep.name == service]
    return entry.load()()


async def served(service: str, app: Any | None = None) -> ServedDocuments:
    """The documents `service`'s app answers at `/openapi.json` and `/asyncapi.json`."""
    if app is None:
        with local_stack_settings(service):
            return await served(service, build_app(service))
    built = app
    found: dict[str, dict[str, Any]] = {}
    transport = httpx.ASGITransport(app=built)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for kind in KINDS:
            response = await client.get(f"/{kind}.json")
            if response.status_code == 404:
                continue
            response.raise_for_status()
            found[kind] = response.json()
    return ServedDocuments(service, found)


def document_path(root: Path, kind: str, service: str) -> Path:
    return root / "docs" / kind / f"{service}.json"


def render(document: dict[str, Any]) -> str:
    """The committed form: indented, keys sorted (FastStream's AsyncAPI orders some members
    differently from one process to the next; sorted, a regeneration changes only what
    changed), one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_documents(root: Path) -> list[Path]:
    """Write every service's documents under `root/docs`; returns the files written."""
    written: list[Path] = []
    for entry in discover_services():
        docs = asyncio.run(served(entry.name))
        for kind, document in docs.documents.items():
            path = document_path(root, kind, entry.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(document), encoding="utf-8")
            written.append(path)
    return written


Root = Annotated[
    Path, typer.Option("--root", help="the repository's root (docs/ is written below it)")
]


@app.command("write")
def write_command(root: Root = Path()) -> None:
    """Regenerate docs/openapi/*.json and docs/asyncapi/*.json from the services' code."""
    for path in write_documents(root):
        typer.echo(f"wrote {path}")

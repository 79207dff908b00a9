"""`mmgen admin`: account and key administration against a running identity service.

It talks to identity over HTTP with a service token of the `admin-cli` client. Under
`mmgen up`, identity leaves its clients' secrets in `<state>/secrets/identity-service-clients.json`
(mode 0600, with identity's address), so whoever can read the local state folder — the person
who started the stack — can administer it, and nobody else. Against another deployment, pass
`--identity-url` and the secret through `MMGEN_IDENTITY_CLI_SECRET` (never on the command line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

CLIENTS_FILE = "identity-service-clients.json"
CLI_SERVICE = "admin-cli"

admin_app = typer.Typer(help="Administer accounts and signing keys of a running stack.")
console = Console()
err = Console(stderr=True)

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", envvar="MMGEN_STATE_DIR", help="local state of `mmgen up`"),
]
IdentityUrl = Annotated[
    str | None,
    typer.Option(
        "--identity-url", envvar="MMGEN_IDENTITY_URL", help="identity's base URL (default: state)"
    ),
]
Secret = Annotated[
    str | None,
    typer.Option(
        "--secret",
        envvar="MMGEN_IDENTITY_CLI_SECRET",
        help="the admin-cli client secret (default: from the state folder); prefer the env var",
        hidden=True,
    ),
]


class AdminError(Exception):
    """Something the operator must fix (message printed as is)."""


def cli_credentials(state_dir: Path, url: str | None, secret: str | None) -> tuple[str, str]:
    if url and secret:
        return url.rstrip("/"), secret
    path = state_dir / "secrets" / CLIENTS_FILE
    try:
        stored: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise AdminError(
            f"{path} not found: start the stack with `mmgen up`, or pass --identity-url and "
            "MMGEN_IDENTITY_CLI_SECRET"
        ) from exc
    return (url or str(stored["identity_url"])).rstrip("/"), secret or str(
        stored["clients"][CLI_SERVICE]
    )


def describe_problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('title')}: {body.get('detail')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def service_client(url: str, secret: str) -> httpx.Client:
    """A client holding an `admin-cli` service token: asked for no audience, so it names every
    service a service token may reach (`rotate-master-key` calls each service's
    `/internal/keys/rewrap`, the other commands identity)."""
    client = httpx.Client(base_url=url, timeout=30.0)
    body = {"service": CLI_SERVICE, "secret": secret}
    response = client.post("/auth/service-token", json=body)
    if response.status_code != 200:
        client.close()
        raise AdminError(
            f"identity refused the admin-cli credentials: {describe_problem(response)}"
        )
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


def _run(state_dir: Path, url: str | None, secret: str | None, call: Any) -> Any:
    try:
        base, key = cli_credentials(state_dir, url, secret)
        client = service_client(base, key)
        try:
            return call(client)
        finally:
            client.close()
    except AdminError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err.print(f"[red]identity is not reachable: {escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(1) from exc


@admin_app.command("create")
def create(
    email: Annotated[str, typer.Option(help="the admin's email (sign-in name)")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="prompted when omitted"
        ),
    ],
    name: Annotated[str, typer.Option(help="display name")] = "Administrator",
    state_dir: StateDir = Path(".mmgen"),
    identity_url: IdentityUrl = None,
    secret: Secret = None,
) -> None:
    """Create an admin account (the first one, or another) on the running identity service."""

    def call(client: httpx.Client) -> str:
        response = client.post(
            "/internal/admins", json={"email": email, "password": password, "name": name}
        )
        if response.status_code != 201:
            raise AdminError(f"could not create the admin: {describe_problem(response)}")
        return str(response.json()["user_id"])

    user_id = _run(state_dir, identity_url, secret, call)
    console.print(f"admin created: user_id {user_id}")


@admin_app.command("rotate-keys")
def rotate_keys(
    state_dir: StateDir = Path(".mmgen"),
    identity_url: IdentityUrl = None,
    secret: Secret = None,
) -> None:
    """Publish a new signing key now; it signs after identity's publish delay (so verifiers
    know it first), and the old key verifies until its tokens expire."""

    def call(client: httpx.Client) -> dict[str, Any]:
        response = client.post("/internal/signing-keys/rotate")
        if response.status_code != 200:
            raise AdminError(f"could not rotate the signing key: {describe_problem(response)}")
        result: dict[str, Any] = response.json()
        return result

    result = _run(state_dir, identity_url, secret, call)
    console.print(
        f"signing key {result['kid']} published, signs from {result.get('signs_from')}; "
        f"{result['previous_kid']} verifies until {result['previous_verifies_until']}"
    )


ServiceUrl = Annotated[
    list[str],
    typer.Option(
        "--service-url",
        help="base URL of a service whose data keys to re-wrap (repeatable)",
    ),
]


@admin_app.command("rotate-master-key")
def rotate_master_key(
    service_url: ServiceUrl,
    state_dir: StateDir = Path(".mmgen"),
    identity_url: IdentityUrl = None,
    secret: Secret = None,
) -> None:
    """Re-wrap every data key under each service's current master key (resumable).

    Rotation, per service: give it the new key (`<SERVICE>_MASTER_KEY`, a new
    `<SERVICE>_MASTER_KEY_ID`) and the old one under `<SERVICE>_MASTER_KEYS_RETIRED`
    (`{"<old id>": "<old key>"}`), restart it, run this command, then drop the retired key.
    """

    def call(client: httpx.Client) -> list[dict[str, Any]]:
        results = []
        for url in service_url:
            response = client.post(f"{url.rstrip('/')}/internal/keys/rewrap")
            if response.status_code != 200:
                raise AdminError(f"{url} refused to re-wrap: {describe_problem(response)}")
            results.append({"service": url, **response.json()})
        return results

    for result in _run(state_dir, identity_url, secret, call):
        console.print(
            f"{result['service']}: {result['rewrapped']} data keys re-wrapped under "
            f"{result['master_key_id']}"
        )

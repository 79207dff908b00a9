"""`mmgen audit`: the verification commands of `mmgen-verify` (`mmgen.verifier`), plus the
operator's `keygen`.

Compliance staff and outside auditors install `mmgen-verify` alone (no database, broker or
services); developers and operators get the same commands here. What they check and their
exit codes are described in `mmgen.verifier.cli`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.verifier.checks import Verdict, check_inclusion, verify_entries, verify_via_api
from mmgen.verifier.cli import build_app
from mmgen.verifier.client import AuditApi, follow
from mmgen.verifier.keys import CheckFailedError, load_key

app = build_app(help="Verify the tamper-evident audit log (compliance).")
console = Console()


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


__all__ = [
    "AuditApi",
    "CheckFailedError",
    "Verdict",
    "app",
    "check_inclusion",
    "follow",
    "load_key",
    "verify_entries",
    "verify_via_api",
]

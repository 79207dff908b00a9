"""The local stack's witness: its key, the log key it trusts, and consent pointed at it.

`mmgen up` runs the witness service (`mmgen.witness`, found like every service) beside consent.
Each must know the other's public key before either starts, so both keys are settled here,
in the state folder:

- the witness's key: `<state>/witness/signing.key` (`PRIVATE+KEY+…`, mode 0600), made on the
  first run and kept, so the key compliance staff pin stays valid across restarts;
- the audit log's key: consent's development secret `audit_signing_key` in
  `<state>/secrets/consent.json`, in the form the platform generates
  (`mmgen.platform.settings`: base64url of 32 random bytes, the Ed25519 seed) — created here
  if consent never ran, read otherwise — so the witness pins the key consent will sign with.

Then the witness gets `WITNESS_SIGNING_KEY=@<file>` and `WITNESS_LOG_KEYS`, consent
`CONSENT_AUDIT_WITNESSES=<witness URL> <witness key>`, and the compliance console the same two
public keys to pin (`CONSOLE_AUDIT_LOG_KEY`, `CONSOLE_WITNESS_KEYS`, quorum 1). A real
deployment configures them by hand, the witness run by someone else (see the witness's README).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.auditlog.cosignature import CosignatureSigner

WITNESS = "witness"
LOG_SERVICE = "consent"
CONSOLE = "console"
WITNESS_NAME = "mmgen.local/witness"
#: consent's default `CONSENT_AUDIT_ORIGIN` (the log key's name).
LOG_ORIGIN = "mmgen.local/audit"
KEY_FILE = Path("witness") / "signing.key"
LOG_SECRET = "audit_signing_key"  # noqa: S105 - the name of consent's setting, not a secret


def witness_key_path(state_dir: Path) -> Path:
    return state_dir / KEY_FILE


def witness_signer(state_dir: Path) -> CosignatureSigner:
    """The local witness's key, made on first use."""
    path = witness_key_path(state_dir)
    if path.exists():
        return CosignatureSigner.from_string(path.read_text())
    signer = CosignatureSigner.generate(WITNESS_NAME)
    _write_secret(path, signer.to_string() + "\n")
    return signer


def log_signer(state_dir: Path, configured: str | None = None) -> NoteSigner:
    """The key consent will sign heads with under this state folder."""
    secret = configured or _consent_secret(state_dir)
    if secret.startswith("PRIVATE+KEY+"):
        return NoteSigner.from_string(secret)
    text = secret.strip()
    return NoteSigner(LOG_ORIGIN, base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _consent_secret(state_dir: Path) -> str:
    path = state_dir / "secrets" / f"{LOG_SERVICE}.json"
    try:
        stored: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        stored = {}
    if LOG_SECRET not in stored:
        stored[LOG_SECRET] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        _write_secret(path, json.dumps(stored, indent=2))
    return str(stored[LOG_SECRET])


def _write_secret(path: Path, text: str) -> None:
    """Written whole or not at all, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def with_local_witness(config: Any, services: Sequence[Any]) -> Any:
    """`config` (a `stack.StackConfig`) with the witness and consent wired to each other,
    when both are among `services`; unchanged otherwise."""
    names = {service.name for service in services}
    if LOG_SERVICE not in names or not names & {WITNESS, CONSOLE}:
        return config
    state_dir: Path = config.state_dir
    log = log_signer(state_dir, config.extra_env.get("CONSENT_AUDIT_SIGNING_KEY"))
    wiring: dict[str, str] = {}
    if CONSOLE in names:
        wiring["CONSOLE_AUDIT_LOG_KEY"] = log.verifier().to_string()
    if WITNESS in names:
        witness = witness_signer(state_dir)
        wiring.update(
            {
                "WITNESS_SIGNING_KEY": f"@{witness_key_path(state_dir).resolve()}",
                "WITNESS_LOG_KEYS": log.verifier().to_string(),
                "CONSENT_AUDIT_WITNESSES": (
                    f"{config.service_url(WITNESS)} {witness.verifier().to_string()}"
                ),
            }
        )
        if CONSOLE in names:
            wiring["CONSOLE_WITNESS_KEYS"] = witness.verifier().to_string()
            wiring["CONSOLE_WITNESS_QUORUM"] = "1"
    return replace(config, extra_env={**wiring, **config.extra_env})

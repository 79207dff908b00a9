"""The local stack's witness wiring: keys settled in the state folder once, and the log key
the witness pins is the one consent signs with under the same folder."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from mmgen.auditlog.checkpoint import NoteVerifier
from mmgen.auditlog.cosignature import CosignatureVerifier
from mmgen.cli import stack
from mmgen.cli.local_witness import with_local_witness, witness_key_path
from mmgen.consent.audit.checkpoints import load_signer
from mmgen.consent.settings import ConsentSettings

SERVICES = [stack.ServiceEntry(n, f"mmgen.{n}.app:create_app") for n in ("consent", "witness")]


def test_keys_are_made_once_and_match_what_consent_signs_with(tmp_path: Path) -> None:
    config = stack.StackConfig(state_dir=tmp_path, service_ports={"witness": 18009})
    wired = with_local_witness(config, SERVICES)
    env = wired.extra_env
    assert config.extra_env == {}  # the caller's config is left as it was
    url, witness_key = env["CONSENT_AUDIT_WITNESSES"].split()
    assert url == "http://127.0.0.1:18009"
    key_file = witness_key_path(tmp_path)
    assert env["WITNESS_SIGNING_KEY"] == f"@{key_file.resolve()}"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    CosignatureVerifier.from_string(witness_key)
    secrets_file = tmp_path / "secrets" / "consent.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    # Consent, started on this state folder, signs with the key the witness was told.
    settings = ConsentSettings(environment="development", state_dir=tmp_path)
    signer = load_signer(settings.audit_signing_key.get_secret_value(), settings.audit_origin)
    assert signer.verifier() == NoteVerifier.from_string(env["WITNESS_LOG_KEYS"])
    # A second `up` keeps both keys.
    assert with_local_witness(config, SERVICES).extra_env == env
    assert "audit_signing_key" in json.loads(secrets_file.read_text())


def test_nothing_is_wired_without_both_services(tmp_path: Path) -> None:
    config = stack.StackConfig(state_dir=tmp_path)
    assert with_local_witness(config, SERVICES[:1]) is config
    assert with_local_witness(config, SERVICES[1:]) is config
    assert not (tmp_path / "witness").exists()


def test_the_console_pins_the_keys_consent_and_the_witness_sign_with(tmp_path: Path) -> None:
    services = [*SERVICES, stack.ServiceEntry("console", "mmgen.console.app:create_app")]
    env = with_local_witness(stack.StackConfig(state_dir=tmp_path), services).extra_env
    assert env["CONSOLE_AUDIT_LOG_KEY"] == env["WITNESS_LOG_KEYS"]
    assert env["CONSOLE_WITNESS_KEYS"] == env["CONSENT_AUDIT_WITNESSES"].split()[1]
    assert env["CONSOLE_WITNESS_QUORUM"] == "1"
    alone = [SERVICES[0], services[-1]]  # consent and the console, no witness
    env = with_local_witness(stack.StackConfig(state_dir=tmp_path), alone).extra_env
    assert set(env) == {"CONSOLE_AUDIT_LOG_KEY"}

"""Settings: per-service prefixes, and production refusing empty or development secrets."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from mmgen.platform import (
    Environment,
    OtelSettings,
    ServiceSettings,
    create_app,
    dev_secret,
    is_development_secret,
    key_bytes,
)
from mmgen.platform.settings import InsecureSecretError


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    service_name: str = "demo"
    master_key: SecretStr = dev_secret("demo-master-key")
    webhook_secret: SecretStr | None = None


def test_fields_come_from_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("DEMO_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("DEMO_JWKS_URL", "http://identity:8000/.well-known/jwks.json")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "wrong:1")  # unprefixed: ignored
    settings = DemoSettings()
    assert settings.kafka_bootstrap == "10.0.0.1:9092"
    assert settings.topic("demo.events") == "t1.demo.events"
    assert settings.jwks_url == "http://identity:8000/.well-known/jwks.json"
    assert settings.jwt_issuer == "mmgen-identity"
    assert settings.jwt_audience == "demo"  # its own name: tokens for others are refused
    assert settings.environment is Environment.development


def test_development_accepts_the_development_default() -> None:
    settings = DemoSettings(environment="development")
    assert is_development_secret(settings.master_key.get_secret_value())


def test_production_refuses_a_development_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as refused:
        DemoSettings()
    message = str(refused.value)
    assert "DEMO_MASTER_KEY" in message
    assert "production" in message


@pytest.mark.parametrize("value", ["", "   ", "changeme", "CHANGETHIS", "secret", "dev-insecure-x"])
def test_production_refuses_empty_and_placeholder_secrets(value: str) -> None:
    with pytest.raises(ValidationError, match="DEMO_MASTER_KEY"):
        DemoSettings(environment="production", master_key=SecretStr(value))


def test_production_names_every_offending_secret() -> None:
    with pytest.raises(ValidationError) as refused:
        DemoSettings(environment="production", webhook_secret=SecretStr("password"))
    assert "DEMO_MASTER_KEY" in str(refused.value)
    assert "DEMO_WEBHOOK_SECRET" in str(refused.value)


def test_production_starts_with_real_secrets() -> None:
    real = secrets.token_urlsafe(32)
    settings = DemoSettings(environment="production", master_key=SecretStr(real))
    assert settings.environment is Environment.production
    assert settings.master_key.get_secret_value() == real
    assert real not in repr(settings)  # a secret never shows up in logs of the settings


def test_otel_settings_keep_their_standard_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    assert not OtelSettings().export_enabled
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert OtelSettings().export_enabled
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not OtelSettings().export_enabled


class _KeyedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KEYED_", extra="ignore", frozen=True)
    service_name: str = "keyed"
    master_key: SecretStr = dev_secret("keyed-master-key")
    index_key: SecretStr = dev_secret("keyed-index-key")


def test_development_secrets_are_generated_once_and_kept_in_the_state_dir(tmp_path) -> None:
    first = _KeyedSettings(environment="development", state_dir=tmp_path)
    again = _KeyedSettings(environment="development", state_dir=tmp_path)
    master = first.master_key.get_secret_value()
    assert not is_development_secret(master)
    assert master == again.master_key.get_secret_value(), "kept across restarts"
    assert master != first.index_key.get_secret_value(), "each secret is its own"
    assert len(key_bytes(first.master_key)) == 32
    stored = tmp_path / "secrets" / "keyed.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    other = _KeyedSettings(environment="development", state_dir=tmp_path / "elsewhere")
    assert other.master_key.get_secret_value() != master


def test_secrets_are_not_generated_outside_development(tmp_path) -> None:
    settings = _KeyedSettings(environment="test", state_dir=tmp_path)
    assert settings.master_key.get_secret_value().startswith("dev-insecure-")
    assert not (tmp_path / "secrets").exists()


def test_an_explicit_secret_is_never_replaced(tmp_path) -> None:
    explicit = base64.b64encode(bytes(range(32))).decode()
    settings = _KeyedSettings(
        environment="development", state_dir=tmp_path, master_key=SecretStr(explicit)
    )
    assert key_bytes(settings.master_key) == bytes(range(32))


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.b64encode(b"short").decode()])
def test_key_bytes_refuses_material_of_the_wrong_size(bad: str) -> None:
    with pytest.raises(InsecureSecretError, match="exactly 32"):
        key_bytes(SecretStr(bad))


# --- fail closed: development secrets only in the local stack ---------------------------------

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - what a container binds to, never the local stack


def _real() -> SecretStr:
    return SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"environment": "development"}, "no state folder"),
        ({"environment": "development", "host": ANY_ADDRESS}, "not on loopback"),
        ({"environment": "test"}, "test has no exemption"),
    ],
)
def test_a_service_with_a_development_secret_refuses_to_start(
    values: dict[str, Any], why: str
) -> None:
    settings = DemoSettings(**values)
    with pytest.raises(InsecureSecretError) as refused:
        settings.refuse_development_secrets()
    assert "DEMO_MASTER_KEY" in str(refused.value), why
    assert "DEMO_SECRETS_DIR" in str(refused.value)


def test_off_loopback_a_state_folder_neither_generates_nor_excuses(tmp_path: Path) -> None:
    settings = _KeyedSettings(environment="development", host=ANY_ADDRESS, state_dir=tmp_path)
    assert settings.master_key.get_secret_value().startswith("dev-insecure-")
    assert not (tmp_path / "secrets").exists()
    with pytest.raises(InsecureSecretError, match="KEYED_INDEX_KEY, KEYED_MASTER_KEY"):
        settings.refuse_development_secrets()


def test_the_test_environment_with_a_state_folder_is_refused_too(tmp_path: Path) -> None:
    settings = _KeyedSettings(environment="test", state_dir=tmp_path)
    with pytest.raises(InsecureSecretError, match="KEYED_MASTER_KEY"):
        settings.refuse_development_secrets()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_the_local_stack_starts_on_its_generated_secrets(tmp_path: Path, host: str) -> None:
    settings = _KeyedSettings(environment="development", host=host, state_dir=tmp_path)
    assert settings.is_local_stack
    assert settings.development_secrets() == []
    settings.refuse_development_secrets()


def test_explicit_secrets_start_anywhere() -> None:
    settings = DemoSettings(environment="test", host=ANY_ADDRESS, master_key=_real())
    settings.refuse_development_secrets()


def test_a_placeholder_inside_a_mapping_of_secrets_is_named() -> None:
    class Rotating(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="ROT_", extra="ignore", frozen=True)
        master_key: SecretStr = dev_secret("rot")
        retired: dict[str, SecretStr] = {}

    settings = Rotating(environment="test", master_key=_real(), retired={"old": "changeme"})
    with pytest.raises(InsecureSecretError, match="ROT_RETIRED"):
        settings.refuse_development_secrets()
    with pytest.raises(ValidationError, match="ROT_RETIRED"):
        Rotating(environment="production", master_key=_real(), retired={"old": "changeme"})


def test_the_app_factory_refuses_to_build_with_a_development_secret() -> None:
    with pytest.raises(InsecureSecretError, match="DEMO_MASTER_KEY"):
        create_app(DemoSettings(environment="test"), title="t", version="1")
    create_app(DemoSettings(environment="test", master_key=_real()), title="t", version="1")


# --- secrets from files (as containers mount them) ----------------------------------------------


def test_secrets_are_read_from_the_service_secrets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = base64.b64encode(secrets.token_bytes(32)).decode()
    (tmp_path / "DEMO_MASTER_KEY").write_text(real + "\n")
    monkeypatch.setenv("DEMO_SECRETS_DIR", str(tmp_path))
    settings = DemoSettings(environment="production")
    assert settings.master_key.get_secret_value() == real
    assert settings.secrets_dir == tmp_path


def test_the_common_secrets_dir_serves_every_service_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEMO_SECRETS_DIR", raising=False)
    from_file = base64.b64encode(secrets.token_bytes(32)).decode()
    from_env = base64.b64encode(secrets.token_bytes(32)).decode()
    (tmp_path / "DEMO_MASTER_KEY").write_text(from_file)
    (tmp_path / "KEYED_MASTER_KEY").write_text(from_file)
    monkeypatch.setenv("MMGEN_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("KEYED_MASTER_KEY", from_env)
    assert DemoSettings(environment="test").master_key.get_secret_value() == from_file
    keyed = _KeyedSettings(environment="test")
    assert keyed.master_key.get_secret_value() == from_env
    # The file serves only the setting it names: the index key is still a development default.
    with pytest.raises(InsecureSecretError, match="KEYED_INDEX_KEY") as refused:
        keyed.refuse_development_secrets()
    assert "KEYED_MASTER_KEY" not in str(refused.value)


def test_a_configured_secrets_dir_that_is_missing_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_SECRETS_DIR", str(tmp_path / "not-mounted"))
    with pytest.raises(InsecureSecretError, match="DEMO_SECRETS_DIR"):
        DemoSettings()


async def test_the_local_stack_answers_only_on_loopback(tmp_path: Path) -> None:
    import httpx

    settings = _KeyedSettings(environment="development", state_dir=tmp_path)
    app = create_app(settings, title="t", version="1")
    for base, status in (("http://127.0.0.1:8001", 200), ("http://10.1.2.3:8001", 403)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            response = await client.get("/healthz")
        assert response.status_code == status, base
    assert response.json()["type"] == "urn:mmgen:problem:loopback-only"


def test_the_audience_is_the_service_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings(service_name="profiles").jwt_audience == "profiles"
    monkeypatch.setenv("DEMO_JWT_AUDIENCE", "projects")
    assert DemoSettings().jwt_audience == "projects"

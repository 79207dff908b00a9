"""Fixtures of the deploy checks: the deploy files loaded and rendered, offline, no engine.

Compose files are interpolated with deploy/compose/.env as `docker compose config` does;
Kubernetes overlays are rendered by `kustomize_build` (kustomize's behaviour for the features
deploy/k8s uses); secrets are generated into a temporary folder by deploy/secrets/generate.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
OBSERVABILITY = DEPLOY / "observability"
COMPOSE_FILES = ("compose.core.yaml", "compose.observability.yaml")
OVERLAYS = ("dev", "prod")
#: The services of the platform: env prefix = name upper-cased, and their ports.
SERVICES: dict[str, int] = {
    "identity": 8001,
    "projects": 8002,
    "profiles": 8003,
    "consent": 8004,
    "retention": 8005,
}
WITNESS_PORT = 8009
CONSOLE_PORT = 8006
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load_module(path: Path, name: str) -> ModuleType:
    """A helper module of these tests or of deploy/, by path (they are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> tuple[str, set[str]]:
    """`${VAR}`, `${VAR:-default}`, `${VAR:?message}` as compose does; the unknown names."""
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if value is not None and not (value == "" and operator and operator.startswith(":")):
            return value
        if operator in ("-", ":-"):
            return argument
        missing.add(name)
        return ""

    return _VARIABLE.sub(replace, text), missing


@pytest.fixture(scope="session")
def kustomize() -> ModuleType:
    return load_module(Path(__file__).with_name("kustomize_build.py"), "mmgen_deploy_kustomize")


@pytest.fixture(scope="session")
def secrets_generator() -> ModuleType:
    return load_module(DEPLOY / "secrets" / "generate.py", "mmgen_deploy_secrets")


@pytest.fixture(scope="session")
def compose_env() -> dict[str, str]:
    return read_env_file(COMPOSE / ".env")


@pytest.fixture(scope="session")
def compose_docs(compose_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each compose file, interpolated with .env (every variable it uses must be defined)."""
    docs = {}
    for name in COMPOSE_FILES:
        text, missing = interpolate((COMPOSE / name).read_text(), compose_env)
        assert not missing, f"{name} uses variables .env does not define: {sorted(missing)}"
        docs[name] = yaml.safe_load(text)
    return docs


def merge_compose(base: Any, overlay: Any) -> Any:
    """Compose's merge of layered files for what ours use: maps merge, other values replace."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge_compose(base[key], value) if key in base else value
        return merged
    return overlay


@pytest.fixture(scope="session")
def compose_model(compose_docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    for name in COMPOSE_FILES:
        model = merge_compose(model, compose_docs[name])
    return model


@pytest.fixture(scope="session")
def rendered(kustomize: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered: overlay name -> manifests."""
    return {overlay: kustomize.build(K8S / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def generated_secrets(secrets_generator: ModuleType, tmp_path_factory: pytest.TempPathFactory):
    """Secret folders as deploy/secrets/generate.py writes them, per kind of deployment."""
    folders = {}
    for kind in ("compose", "k8s"):
        folder = tmp_path_factory.mktemp(f"secrets-{kind}")
        secrets_generator.generate(folder, kind)
        folders[kind] = folder
    return folders

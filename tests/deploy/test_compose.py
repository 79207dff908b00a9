"""deploy/compose: valid against the Compose Specification, hardened, pinned, secrets from files."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose"
SERVICES = ("identity", "projects", "profiles", "consent", "retention")
BASE = DEPLOY / "k8s" / "base"
#: The files compose mounts from deploy/k8s (kustomize reads nothing outside its tree, compose
#: reads anywhere): one copy of each, where both find it.
SHARED_FILES = {
    "/etc/nginx/nginx.conf": BASE / "gateway" / "nginx.conf",
    "/opt/mmgen/kafka-run.sh": BASE / "kafka" / "kafka-run.sh",
    "/opt/mmgen/kafka-init.sh": BASE / "kafka" / "kafka-init.sh",
    "/opt/mmgen/mongo-run.sh": BASE / "mongodb" / "mongo-run.sh",
    "/opt/mmgen/mongo-init.js": BASE / "mongodb" / "mongo-init.js",
}
GATEWAY_CONFIG = SHARED_FILES["/etc/nginx/nginx.conf"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """The Compose Specification's JSON Schema, as check-jsonschema vendors it (offline)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(validator: Any, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("name", ["compose.core.yaml", "compose.observability.yaml"])
def test_each_compose_file_is_valid(
    validator: Any, compose_docs: dict[str, Any], name: str
) -> None:
    assert _errors(validator, compose_docs[name]) == []


def test_the_layered_model_is_valid(validator: Any, compose_model: dict[str, Any]) -> None:
    assert _errors(validator, compose_model) == []
    observability = {"otel-collector", "jaeger", "prometheus", "grafana", "blackbox-exporter"}
    assert observability <= set(compose_model["services"])


def test_the_schema_catches_a_mistake(validator: Any, compose_docs: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose_docs["compose.core.yaml"])
    broken["services"]["identity"]["deploy"]["replica"] = 2  # not a Compose field
    assert any("replica" in error for error in _errors(validator, broken))


def test_every_service_is_replicated_hardened_and_probed(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    for name in SERVICES:
        service = services[name]
        assert service["deploy"]["replicas"] == 2, name
        assert service["read_only"] is True, name
        assert service["user"].split(":")[0] not in ("0", "root"), name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert any("/readyz" in part for part in service["healthcheck"]["test"]), name
        assert "limits" in service["deploy"]["resources"], name
        assert set(service["networks"]) == {"edge", "backend"}, name
    witness = services["witness"]
    assert witness["read_only"] is True and witness["deploy"]["replicas"] == 1
    assert "edge" not in witness["networks"], "the witness is not behind the gateway"


def test_only_the_gateway_and_the_uis_are_published(compose_model: dict[str, Any]) -> None:
    published = {name for name, s in compose_model["services"].items() if s.get("ports")}
    assert published == {"gateway", "grafana", "jaeger", "prometheus"}
    assert compose_model["networks"]["backend"]["internal"] is True
    assert compose_model["networks"]["edge"]["internal"] is True


def test_image_tags_are_pinned_in_env(compose_env: dict[str, str]) -> None:
    """Every image comes from a variable of .env, and each names an exact version."""
    for name in ("compose.core.yaml", "compose.observability.yaml"):
        for image in re.findall(r"^\s*image:\s*(\S+)", (COMPOSE / name).read_text(), re.M):
            assert image.startswith("${"), f"{name}: image {image} is not taken from .env"
    images = {key: value for key, value in compose_env.items() if key.endswith("_IMAGE")}
    assert len(images) >= 8
    for key, value in images.items():
        repository, _, tag = value.rpartition(":")
        assert repository and tag and tag != "latest", f"{key}={value} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{key}={value}: not an exact version"
    assert compose_env["MMGEN_IMAGE_TAG"] != "latest"


def test_the_gateway_is_the_only_trusted_proxy(compose_model: dict[str, Any], compose_env) -> None:
    gateway = compose_model["services"]["gateway"]
    assert gateway["networks"]["edge"]["ipv4_address"] == compose_env["GATEWAY_ADDRESS"]
    for name in (*SERVICES, "console"):
        env = compose_model["services"][name]["environment"]
        assert env["FORWARDED_ALLOW_IPS"] == compose_env["GATEWAY_ADDRESS"], name


def test_secrets_come_from_files_never_from_the_repository(compose_model: dict[str, Any]) -> None:
    declared = compose_model["secrets"]
    for name, secret in declared.items():
        assert secret["file"] == f"./secrets/{name}", name
    ignore = (COMPOSE / "secrets" / ".gitignore").read_text().split()
    assert ignore[-2:] == ["*", "!.gitignore"] or ("*" in ignore and "!.gitignore" in ignore)
    secret_words = re.compile(r"(KEY|PASSWORD|SECRET|MONGO_URI|WITNESSES)$")
    for service_name, service in compose_model["services"].items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(declared), service_name
        for variable, value in (service.get("environment") or {}).items():
            if variable.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (service_name, variable)
                assert value.removeprefix("/run/secrets/") in mounted, (service_name, variable)
            else:
                assert not secret_words.search(variable), (
                    f"{service_name}: {variable} holds a secret inline; use {variable}_FILE"
                )


def test_the_generator_writes_every_secret_compose_mounts(
    compose_model: dict[str, Any], generated_secrets: dict[str, Path]
) -> None:
    folder = generated_secrets["compose"]
    for name in compose_model["secrets"]:
        assert (folder / name).is_file(), f"deploy/secrets/generate.py does not make {name}"
    uri = (folder / "identity_mongo_uri").read_text().strip()
    assert uri.startswith("mongodb://identity:") and "replicaSet=rs0" in uri
    assert "mongo-1:27017,mongo-2:27017,mongo-3:27017" in uri


def test_generating_again_keeps_every_secret(
    secrets_generator: Any, generated_secrets: dict[str, Path]
) -> None:
    folder = generated_secrets["compose"]
    before = {path.name: path.read_text() for path in folder.iterdir()}
    again = secrets_generator.generate(folder, "compose")
    assert again.created == []
    assert {path.name: path.read_text() for path in folder.iterdir()} == before


def test_every_mounted_file_is_there_and_the_scripts_are_the_ones_kubernetes_runs(
    compose_model: dict[str, Any],
) -> None:
    mounted: dict[str, Path] = {}
    for service in compose_model["services"].values():
        for volume in service.get("volumes", []):
            source, _, target = str(volume).partition(":")
            if source.startswith("."):
                mounted[target.removesuffix(":ro")] = (COMPOSE / source).resolve()
    assert [str(path) for path in mounted.values() if not path.exists()] == []
    assert {target: mounted.get(target) for target in SHARED_FILES} == SHARED_FILES


def _server_blocks(config: str) -> dict[str, str]:
    """nginx `server { ... }` blocks by the port they listen on (braces balanced)."""
    blocks = {}
    for match in re.finditer(r"\n    server \{", config):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(config)):
            depth += {"{": 1, "}": -1}.get(config[end], 0)
            if depth == 0:
                break
        block = config[match.start() : end + 1]
        port = re.search(r"listen (\d+);", block)
        assert port is not None, block[:80]
        blocks[port.group(1)] = block
    return blocks


def test_the_gateway_routes_every_service_and_hides_internal_routes() -> None:
    config = _server_blocks(GATEWAY_CONFIG.read_text())["8080"]
    blocked = re.search(r"location ~ \^/\(([a-z|]+)\)/\(([a-z|]+)\)", config)
    assert blocked is not None
    assert set(blocked.group(1).split("|")) == set(SERVICES)
    assert set(blocked.group(2).split("|")) == {"internal", "metrics", "readyz"}
    for name in SERVICES:
        assert re.search(
            rf"upstream {name}\s+\{{ server {name}:\d+;",
            GATEWAY_CONFIG.read_text(),
        ), name
        assert re.search(rf"location /{name}/ [^}}]*proxy_pass http://{name}/;", config), name
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config


def test_the_console_is_deployed_like_a_service(
    compose_model: dict[str, Any], compose_env: dict[str, str]
) -> None:
    console = compose_model["services"]["console"]
    assert console["image"] == (
        f"{compose_env['MMGEN_IMAGE_REGISTRY']}/console:{compose_env['MMGEN_IMAGE_TAG']}"
    )
    # its sessions are in its database: either replica honours a session the other opened
    assert console["deploy"]["replicas"] == 2
    assert console["read_only"] is True and console["user"].split(":")[0] not in ("0", "root")
    assert console["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in console["security_opt"]
    assert any("/readyz" in part for part in console["healthcheck"]["test"])
    assert "memory" in console["deploy"]["resources"]["limits"]
    # the edge (the gateway reaches it; it reaches the services), the backend (its database)
    assert set(console["networks"]) == {"edge", "backend"}
    assert set(console["depends_on"]) == {"mongo-init"}, "it waits for no Kafka"
    env = console["environment"]
    assert env["CONSOLE_ENVIRONMENT"] == "production"
    assert env["CONSOLE_PORT"] == "8006"
    assert env["CONSOLE_IDENTITY_URL"] == "http://identity:8001"
    assert env["CONSOLE_JWKS_URL"] == "http://identity:8001/.well-known/jwks.json"
    assert env["CONSOLE_AUDIT_URL"] == "http://consent:8004"
    assert env["CONSOLE_RETENTION_URL"] == "http://retention:8005"
    assert env["CONSOLE_COOKIE_SECURE"] == "true"
    assert env["CONSOLE_AUDIT_LOG_KEY_FILE"] == "/run/secrets/audit_log_public_key"
    assert env["CONSOLE_WITNESS_KEYS_FILE"] == "/run/secrets/witness_public_key"
    assert int(env["CONSOLE_WITNESS_QUORUM"]) >= 1
    assert env["CONSOLE_MONGO_URI_FILE"] == "/run/secrets/console_mongo_uri"
    assert env["CONSOLE_MONGO_DATABASE"] == "console"
    assert env["CONSOLE_MASTER_KEY_FILE"] == "/run/secrets/console_master_key"
    assert not [variable for variable in env if "KAFKA" in variable]
    assert set(console["secrets"]) == {
        "console_mongo_uri",
        "console_master_key",
        "audit_log_public_key",
        "witness_public_key",
    }


def test_the_console_gets_a_database_user_and_no_kafka_user(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    mongo_init = services["mongo-init"]
    assert "console" in mongo_init["environment"]["MONGO_SERVICES"].split()
    assert "mongo_console_password" in mongo_init["secrets"]
    assert "kafka_console_password" not in services["kafka-init"]["secrets"]
    assert "kafka_console_password" not in compose_model["secrets"]


def test_the_gateway_gives_the_console_an_origin_of_its_own(
    compose_model: dict[str, Any], compose_env: dict[str, str]
) -> None:
    config = GATEWAY_CONFIG.read_text()
    assert re.search(r"upstream console\s+\{ server console:8006;", config)
    console = _server_blocks(config)["8081"]
    assert re.search(r"location / \{\s*proxy_pass http://console;", console)
    # The console compares a sign-in's Origin with scheme://host:port as it sees them.
    assert "proxy_set_header Host $http_host;" in console
    assert "proxy_set_header X-Forwarded-Proto $client_proto;" in console
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in console
    blocked = re.search(r"location ~ \^/\(([a-z|]+)\)\(/\|\$\)", console)
    assert blocked is not None and set(blocked.group(1).split("|")) >= {"metrics", "readyz"}
    stream = re.search(r"location = /api/audit/stream \{([^}]*)\}", console)
    assert stream is not None and "proxy_buffering off;" in stream.group(1)
    gateway = compose_model["services"]["gateway"]
    published = f"{compose_env['GATEWAY_BIND']}:{compose_env['GATEWAY_CONSOLE_PORT']}:8081"
    assert published in gateway["ports"]
    assert "console" in gateway["depends_on"]


def test_mongodb_aborts_a_killed_clients_transaction_as_soon_as_the_local_stack_does() -> None:
    """A replica SIGKILLed inside a transaction keeps its writes locked until the server reaps
    the transaction; the deployed MongoDB must reap it no later than the local stack does."""
    from mmgen.localstack.database import TRANSACTION_LIFETIME_SECONDS

    script = SHARED_FILES["/opt/mmgen/mongo-run.sh"].read_text()
    found = re.search(
        r'--setParameter "transactionLifetimeLimitSeconds='
        r'\$\{MONGO_TRANSACTION_LIFETIME_SECONDS:-(\d+)\}"',
        script,
    )
    assert found, "mongo-run.sh does not set transactionLifetimeLimitSeconds"
    assert int(found.group(1)) <= TRANSACTION_LIFETIME_SECONDS

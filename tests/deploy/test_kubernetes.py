"""deploy/k8s: overlays render, every manifest is valid Kubernetes, every workload is hardened."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: The Kubernetes version the manifests are checked against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("dev", "prod")
SERVICES = ("identity", "projects", "profiles", "consent", "retention")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def _named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_valid_kubernetes(rendered: dict[str, Any], overlay: str) -> None:
    failures = []
    for manifest in rendered[overlay]:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except Exception as exc:  # noqa: BLE001 - every kind of refusal is reported
            failures.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc}")
    assert failures == []


def test_the_schema_check_catches_a_mistake(rendered: dict[str, Any]) -> None:
    deployment = copy.deepcopy(_named(rendered["prod"], "Deployment", "identity"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = (
        "/"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_probed_bounded_and_locked_down(
    rendered: dict[str, Any], kustomize: Any, overlay: str
) -> None:
    for manifest in rendered[overlay]:
        spec = kustomize.pod_spec(manifest)
        if spec is None:
            continue
        where = f"{overlay}: {manifest['kind']}/{manifest['metadata']['name']}"
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            if manifest["kind"] != "Job":
                assert "livenessProbe" in container and "readinessProbe" in container, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_two_replicas_probed_on_healthz_and_readyz(
    rendered: dict[str, Any], overlay: str
) -> None:
    manifests = rendered[overlay]
    for name in SERVICES:
        deployment = _named(manifests, "Deployment", name)
        assert deployment["spec"]["replicas"] == 2
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        pdb = _named(manifests, "PodDisruptionBudget", name)
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        account = _named(manifests, "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
        service = _named(manifests, "Service", name)
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def _pods(manifests: list[dict[str, Any]], kustomize: Any) -> list[dict[str, str]]:
    return [
        m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if kustomize.pod_spec(m) is not None
    ]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_cover_every_pod_and_name_real_peers(
    rendered: dict[str, Any], kustomize: Any, overlay: str
) -> None:
    manifests = rendered[overlay]
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    default_deny = _named(manifests, "NetworkPolicy", "default-deny")
    assert default_deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    pods = _pods(manifests, kustomize)
    for labels in pods:
        if labels.get("app.kubernetes.io/name", "").endswith("-init"):
            continue  # the init jobs only reach out, under Kafka's and MongoDB's policies
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] and _selects(p["spec"]["podSelector"], labels)
        ]
        assert own, f"no NetworkPolicy of its own for pods {labels}"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "namespaceSelector" in peer:
                    continue
                assert any(_selects(peer["podSelector"], labels) for labels in pods), (
                    f"{policy['metadata']['name']}: {peer} selects no pod"
                )


def _peers(manifests: list[dict[str, Any]], name: str, direction: str) -> set[str]:
    """The pods (by name label) a NetworkPolicy lets `name` reach (egress) or be reached by."""
    policy = _named(manifests, "NetworkPolicy", name)
    side = "to" if direction == "egress" else "from"
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in policy["spec"].get(direction, [])
        for peer in rule[side]
        if "podSelector" in peer
    }


def test_the_services_reach_only_what_they_use(rendered: dict[str, Any]) -> None:
    manifests = rendered["prod"]

    def egress_peers(name: str) -> set[str]:
        return _peers(manifests, name, "egress")

    # retention's JWKS: the keys its erasure commands are checked with
    assert egress_peers("identity") == {"kafka", "mongo", "retention"}
    assert egress_peers("projects") == {"kafka", "mongo", "identity", "retention"}
    assert egress_peers("consent") == {"kafka", "mongo", "identity", "witness", "retention"}
    assert egress_peers("retention") == {
        "kafka",
        "mongo",
        "identity",
        "projects",
        "profiles",
        "consent",
    }
    assert egress_peers("witness") == set()
    assert egress_peers("gateway") == {*SERVICES, "console"}
    # the console: the three services it calls with the officer's token, its database; no Kafka
    assert egress_peers("console") == {"identity", "consent", "retention", "mongo"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_and_mongodb_quorums_match_their_replicas(
    rendered: dict[str, Any], overlay: str
) -> None:
    manifests = rendered[overlay]
    kafka = _named(manifests, "StatefulSet", "kafka")
    replicas = kafka["spec"]["replicas"]
    env = _env(kafka["spec"]["template"]["spec"]["containers"][0])
    voters = env["KAFKA_CONTROLLER_VOTERS"].split(",")
    assert [v.split("@")[0] for v in voters] == [str(i) for i in range(replicas)]
    assert int(env["KAFKA_REPLICATION_FACTOR"]) == replicas
    job = _env(_named(manifests, "Job", "kafka-init")["spec"]["template"]["spec"]["containers"][0])
    assert int(job["KAFKA_REPLICATION_FACTOR"]) == replicas
    mongo = _named(manifests, "StatefulSet", "mongo")
    members = _env(
        _named(manifests, "Job", "mongo-init")["spec"]["template"]["spec"]["containers"][0]
    )
    assert members["MONGO_MEMBERS"].split(",") == [
        f"mongo-{i}.mongo:27017" for i in range(mongo["spec"]["replicas"])
    ]


def test_prod_pulls_from_the_registry_and_serves_tls(
    rendered: dict[str, Any], kustomize: Any
) -> None:
    for manifest in rendered["prod"]:
        spec = kustomize.pod_spec(manifest)
        for container in spec["containers"] if spec else []:
            if container["name"] in (*SERVICES, "console", "witness"):
                assert container["image"].startswith("registry.example.com/mmgen/")
    ingress = _named(rendered["prod"], "Ingress", "mmgen")
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway"


def test_every_mounted_secret_key_is_one_the_generator_writes(
    rendered: dict[str, Any], kustomize: Any, secrets_generator: Any
) -> None:
    declared = secrets_generator.K8S_SECRETS
    for manifest in rendered["prod"]:
        spec = kustomize.pod_spec(manifest)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            mounts = {
                m["mountPath"]: volumes[m["name"]]
                for m in container.get("volumeMounts", [])
                if m["name"] in volumes  # volume claim templates are not secrets
            }
            for variable, value in _env(container).items():
                if not variable.endswith("_FILE"):
                    continue
                folder, _, key = value.rpartition("/")
                secret = mounts[folder]["secret"]
                assert key in declared[secret["secretName"]], (variable, secret["secretName"])
                items = secret.get("items")
                assert items is None or key in {item["path"] for item in items}, variable


def test_the_builder_refuses_what_it_does_not_reproduce(kustomize: Any, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(kustomize.KustomizeError, match="commonLabels"):
        kustomize.build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap, name: x}\n"
        "  patch: '[{op: test, path: /data/a, value: \"2\"}]'\n"
    )
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: '1'}\n"
    )
    with pytest.raises(kustomize.KustomizeError, match="test of /data/a"):
        kustomize.build(tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_is_deployed_probed_and_reached_through_the_gateway_only(
    rendered: dict[str, Any], overlay: str
) -> None:
    manifests = rendered[overlay]
    deployment = _named(manifests, "Deployment", "console")
    # its sessions are in its database: either replica honours a session the other opened
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 8006
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["spec"]["serviceAccountName"] == "console"
    assert _named(manifests, "ServiceAccount", "console")["automountServiceAccountToken"] is False
    service = _named(manifests, "Service", "console")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8006
    spread = pod["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"] == deployment["spec"]["selector"]
    # a drain or an upgrade leaves one replica serving (and can always proceed: two replicas)
    budget = _named(manifests, "PodDisruptionBudget", "console")
    assert budget["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    labels = pod["metadata"]["labels"]
    assert "mmgen.io/kafka-client" not in labels, "the console uses no topic"
    env = _env(container)
    assert env["CONSOLE_ENVIRONMENT"] == "production"
    assert env["CONSOLE_COOKIE_SECURE"] == "true"
    assert env["CONSOLE_IDENTITY_URL"] == "http://identity:8001"
    assert env["CONSOLE_AUDIT_URL"] == "http://consent:8004"
    assert env["CONSOLE_RETENTION_URL"] == "http://retention:8005"
    assert env["CONSOLE_AUDIT_LOG_KEY_FILE"] == "/run/secrets/audit_log_public_key"
    assert env["CONSOLE_WITNESS_KEYS_FILE"] == "/run/secrets/witness_public_key"
    assert int(env["CONSOLE_WITNESS_QUORUM"]) >= 1
    assert env["CONSOLE_MONGO_URI_FILE"] == "/run/secrets/console_mongo_uri"
    assert env["CONSOLE_MASTER_KEY_FILE"] == "/run/secrets/console_master_key"
    assert not [variable for variable in env if "KAFKA" in variable]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "mmgen-console"
    # who reaches it: the gateway's pods, and the monitoring namespace for /metrics
    assert _peers(manifests, "console", "ingress") == {"gateway"}
    policy = _named(manifests, "NetworkPolicy", "console")
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]
    assert namespaces == ["monitoring"]
    assert [rule["ports"] for rule in policy["spec"]["ingress"]] == [
        [{"protocol": "TCP", "port": 8006}]
    ] * 2
    # the services it calls let it in; Kafka does not (it carries no client label)
    for name in ("identity", "consent", "retention"):
        assert "console" in _peers(manifests, name, "ingress"), name
    for name in ("projects", "profiles", "witness"):
        assert "console" not in _peers(manifests, name, "ingress"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_has_a_host_of_its_own_on_the_gateways_console_port(
    rendered: dict[str, Any], overlay: str
) -> None:
    manifests = rendered[overlay]
    ingress = _named(manifests, "Ingress", "mmgen-console")
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gateway", "port": {"name": "console"}}
    assert rule["host"] != _named(manifests, "Ingress", "mmgen")["spec"]["rules"][0]["host"]
    gateway = _named(manifests, "Service", "gateway")
    assert {"name": "console", "port": 8081, "targetPort": 8081, "protocol": "TCP"} in gateway[
        "spec"
    ]["ports"]
    container = _named(manifests, "Deployment", "gateway")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert {"name": "console", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    policy = _named(manifests, "NetworkPolicy", "gateway")
    ports = {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}
    assert ports == {8080, 8081}
    if overlay == "prod":
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


def test_the_console_secret_holds_its_database_master_key_and_pinned_keys_only(
    secrets_generator: Any, generated_secrets: dict[str, Path]
) -> None:
    declared = secrets_generator.K8S_SECRETS
    assert set(declared["mmgen-console"]) == {
        "console_mongo_uri",
        "console_master_key",
        "audit_log_public_key",
        "witness_public_key",
    }
    assert "mongo_console_password" in declared["mmgen-mongo"]
    assert "kafka_console_password" not in declared["mmgen-kafka"]
    folder = generated_secrets["k8s"]
    uri = (folder / "console_mongo_uri").read_text().strip()
    assert uri.startswith("mongodb://console:") and "/console?replicaSet=rs0" in uri
    assert not (folder / "kafka_console_password").exists()
    # seals its sessions' tokens: 32 random bytes of its own, no other service's key
    master_key = (folder / "console_master_key").read_text().strip()
    assert len(base64.b64decode(master_key, validate=True)) == 32
    others = {(folder / f"{s}_master_key").read_text().strip() for s in secrets_generator.SERVICES}
    assert master_key not in others
    # consent asks the witness whose key the console pins
    witness = (folder / "witness_public_key").read_text().strip()
    assert (folder / "consent_audit_witnesses").read_text().split() == [
        "http://witness:8009",
        witness,
    ]

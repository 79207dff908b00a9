"""Generate every secret a deployment of deploy/compose or deploy/k8s needs, as one file each.

    uv run python deploy/secrets/generate.py compose deploy/compose/secrets
    uv run python deploy/secrets/generate.py k8s ./mmgen-secrets   # + secrets.yaml for kubectl

Existing files are kept (running it again adds only what is missing), so keys survive: a new
master key would make every stored personal field unreadable, a new audit signing key would
break every verifier's pinned key. The folder is made 0700; its files are 0644 because the
containers read them under their own user ids (compose bind-mounts them as they are).
Nothing here is ever committed: deploy/compose/secrets/ ignores everything but its .gitignore.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import secrets
import string
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.identity.adapters.hashing import service_secret
from mmgen.platform.settings import key_bytes

#: Services with a database, a Kafka user and a master key of their own (the witness has none).
SERVICES: tuple[str, ...] = ("identity", "projects", "profiles", "consent", "retention")
#: Services with a database and a master key of their own: those, and the console (its
#: officers' sessions, their tokens sealed under its master key; it uses no topic, so it has
#: no Kafka user).
MONGO_SERVICES: tuple[str, ...] = (*SERVICES, "console")
#: Replica-set members as each kind of deployment names them.
MONGO_HOSTS: dict[str, str] = {
    "compose": "mongo-1:27017,mongo-2:27017,mongo-3:27017",
    "k8s": "mongo-0.mongo:27017,mongo-1.mongo:27017,mongo-2.mongo:27017",
}
REPLICA_SET = "rs0"
DEFAULT_AUDIT_ORIGIN = "mmgen.example/audit"
DEFAULT_WITNESS_NAME = "witness.mmgen.example"
WITNESS_URL = "http://witness:8009"
#: Which secret files each Kubernetes Secret carries (compose mounts files one by one).
K8S_SECRETS: dict[str, tuple[str, ...]] = {
    "mmgen-identity": (
        "identity_mongo_uri",
        "kafka_identity_password",
        "identity_master_key",
        "identity_blind_index_key",
        "identity_service_credentials_key",
        "identity_bootstrap_admin_password",
    ),
    "mmgen-projects": ("projects_mongo_uri", "kafka_projects_password", "projects_master_key"),
    "mmgen-profiles": ("profiles_mongo_uri", "kafka_profiles_password", "profiles_master_key"),
    "mmgen-consent": (
        "consent_mongo_uri",
        "kafka_consent_password",
        "consent_master_key",
        "consent_audit_signing_key",
        "consent_audit_witnesses",
    ),
    "mmgen-retention": (
        "retention_mongo_uri",
        "kafka_retention_password",
        "retention_master_key",
        "retention_receipt_signing_key",
        "retention_identity_client_secret",
    ),
    # Its database and the master key sealing its sessions' tokens; the keys it pins and hands
    # to the officers' browsers (public, but given out of band: replace witness_public_key with
    # each outside witness's key, one per line).
    "mmgen-console": (
        "console_mongo_uri",
        "console_master_key",
        "audit_log_public_key",
        "witness_public_key",
    ),
    "mmgen-witness": ("witness_signing_key", "audit_log_public_key"),
    "mmgen-kafka": ("kafka_admin_password", *(f"kafka_{s}_password" for s in SERVICES)),
    "mmgen-mongo": (
        "mongo_root_password",
        "mongo_keyfile",
        *(f"mongo_{s}_password" for s in MONGO_SERVICES),
    ),
}


def password(length: int = 32) -> str:
    """Letters and digits only: safe inside JAAS quotes, URIs and shell without escaping."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def key32() -> str:
    """Base64 of 32 random bytes: the form of every symmetric key and Ed25519 seed setting."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def mongo_keyfile() -> str:
    """A replica set key: base64 characters, 6 to 1024 of them (MongoDB's rule)."""
    return base64.b64encode(secrets.token_bytes(756)).decode("ascii")


def witness_verifier_key(signing_key: str) -> str:
    """The witness's cosignature verifier key (what consent and the console pin)."""
    return str(CosignatureSigner.from_string(signing_key).verifier().to_string())


class SecretFolder:
    """Files in one folder, each written once (an existing file is the secret's value)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
        self.created: list[str] = []

    def get(self, name: str, make: Callable[[], str]) -> str:
        path = self.root / name
        if path.exists():
            return path.read_text().removesuffix("\n")
        value = make()
        path.write_text(value + "\n")
        path.chmod(0o644)
        self.created.append(name)
        return value


def generate(
    root: Path,
    kind: str,
    *,
    mongo_hosts: str | None = None,
    audit_origin: str = DEFAULT_AUDIT_ORIGIN,
    witness_name: str = DEFAULT_WITNESS_NAME,
) -> SecretFolder:
    folder = SecretFolder(root)
    hosts = mongo_hosts or MONGO_HOSTS[kind]
    folder.get("kafka_admin_password", password)
    folder.get("mongo_root_password", password)
    folder.get("mongo_keyfile", mongo_keyfile)
    for service in SERVICES:
        folder.get(f"kafka_{service}_password", password)
    for service in MONGO_SERVICES:
        folder.get(f"{service}_master_key", key32)
        mongo_password = folder.get(f"mongo_{service}_password", password)
        uri = (
            f"mongodb://{service}:{quote(mongo_password, safe='')}@{hosts}/{service}"
            f"?replicaSet={REPLICA_SET}&authSource=admin"
        )
        folder.get(f"{service}_mongo_uri", functools.partial(str, uri))
    folder.get("identity_blind_index_key", key32)
    credentials = folder.get("identity_service_credentials_key", key32)
    folder.get("identity_bootstrap_admin_password", lambda: password(40))
    folder.get(
        "retention_identity_client_secret",
        lambda: service_secret(key_bytes(SecretStr(credentials)), "retention"),
    )
    folder.get("retention_receipt_signing_key", key32)
    audit_key = folder.get(
        "consent_audit_signing_key", lambda: NoteSigner.generate(audit_origin).to_string()
    )
    folder.get(
        "audit_log_public_key", lambda: NoteSigner.from_string(audit_key).verifier().to_string()
    )
    witness_key = folder.get(
        "witness_signing_key", lambda: NoteSigner.generate(witness_name).to_string()
    )
    witness_vkey = folder.get("witness_public_key", lambda: witness_verifier_key(witness_key))
    # `<witness URL> <its verifier key>`, one line per witness consent asks to cosign.
    folder.get("consent_audit_witnesses", lambda: f"{WITNESS_URL} {witness_vkey}")
    folder.get("grafana_admin_password", password)
    return folder


def kubernetes_secrets(root: Path) -> str:
    """The Secrets of deploy/k8s as one YAML stream (JSON documents, which YAML accepts)."""
    documents = []
    for name, keys in K8S_SECRETS.items():
        documents.append(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mmgen"}},
                    "stringData": {
                        key: (root / key).read_text().removesuffix("\n") for key in keys
                    },
                },
                indent=2,
            )
        )
    return "---\n".join(doc + "\n" for doc in documents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=sorted(MONGO_HOSTS), help="which deployment")
    parser.add_argument("folder", type=Path, help="where the secret files go")
    parser.add_argument(
        "--mongo-hosts",
        help="host:port of every replica-set member, comma separated (default: the kind's own; "
        "the k8s dev overlay runs one member: mongo-0.mongo:27017)",
    )
    parser.add_argument("--audit-origin", default=DEFAULT_AUDIT_ORIGIN)
    parser.add_argument("--witness-name", default=DEFAULT_WITNESS_NAME)
    args = parser.parse_args(argv)
    folder = generate(
        args.folder,
        args.kind,
        mongo_hosts=args.mongo_hosts,
        audit_origin=args.audit_origin,
        witness_name=args.witness_name,
    )
    print(f"{args.folder}: {len(folder.created)} secret(s) created", file=sys.stderr)
    if args.kind == "k8s":
        out = args.folder / "secrets.yaml"
        out.write_text(kubernetes_secrets(args.folder))
        out.chmod(0o600)
        print(f"apply them with: kubectl apply -n mmgen -f {out}", file=sys.stderr)
    if not (args.folder / "consent_audit_witnesses").read_text().strip():
        print(
            "note: consent_audit_witnesses is empty (heads are not witnessed): once the witness "
            f"runs, write '{WITNESS_URL} <key from its GET /public-key>' into it",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

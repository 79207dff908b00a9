"""The Kafka init job creates every topic the services use, so theirs (made with replication
factor 1) never come first, and grants each service exactly the topics and groups its code uses.

The script itself is run, against recording stand-ins of Kafka's command-line tools, and what
it asked for is compared with each service's topics as its code derives them (the runtime's
owned, consumed and copied topics, plus the Kafka clients a service adds of its own: consent's
audit log, retention's reader of it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mmgen.events.heads import heads_topic
from mmgen.events.republish import republish_topic
from mmgen.events.topics import DEFAULT_PARTITIONS, Topics, dlq_topic

INIT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "kafka" / "kafka-init.sh"
SERVICES = ("identity", "projects", "profiles", "consent", "retention")
TOOLS = ("kafka-topics.sh", "kafka-configs.sh", "kafka-acls.sh")
#: A stand-in for each tool: one line per call, the tool's name and its arguments separated
#: by the ASCII unit separator.
RECORDER = """#!/bin/sh
{ printf '%s' "$(basename "$0")"; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\n'; } \\
    >> "$KAFKA_CALLS"
"""
TOPICS = Topics()


@dataclass
class Grants:
    """What the script asked the cluster for."""

    created: dict[str, int] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    #: principal -> topic -> operations
    topics: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    #: principal -> (group name, prefixed) -> operations
    groups: dict[str, dict[tuple[str, bool], set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _parse(calls: list[list[str]]) -> Grants:
    grants = Grants()
    for tool, *args in calls:
        if tool == "kafka-topics.sh" and "--create" in args:
            grants.created[_option(args, "--topic")] = int(_option(args, "--partitions"))
        elif tool == "kafka-configs.sh":
            assert _option(args, "--entity-type") == "users"
            grants.users.add(_option(args, "--entity-name"))
        elif tool == "kafka-acls.sh":
            assert "--add" in args and "--deny-principal" not in args
            principal = _option(args, "--allow-principal").removeprefix("User:")
            operations = {args[i + 1] for i, arg in enumerate(args) if arg == "--operation"}
            if "--topic" in args:
                assert "--resource-pattern-type" not in args, "topics are granted by name"
                grants.topics[principal][_option(args, "--topic")] |= operations
            else:
                prefixed = "--resource-pattern-type" in args
                assert not prefixed or _option(args, "--resource-pattern-type") == "prefixed"
                grants.groups[principal][(_option(args, "--group"), prefixed)] |= operations
    return grants


@pytest.fixture(scope="module")
def grants(tmp_path_factory: pytest.TempPathFactory) -> Grants:
    """kafka-init.sh run with recording tools and a password file per service."""
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    root = tmp_path_factory.mktemp("kafka-init")
    tools = root / "bin"
    tools.mkdir()
    for tool in TOOLS:
        (tools / tool).write_text(RECORDER)
        (tools / tool).chmod(0o755)
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / "kafka_admin_password").write_text("admin-password\n")
    for service in SERVICES:
        (secrets / f"kafka_{service}_password").write_text(f"{service}-password\n")
    calls = root / "calls"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_BIN_DIR": str(tools),
        "KAFKA_BOOTSTRAP": "kafka:9092",
        "KAFKA_ADMIN_PASSWORD_FILE": str(secrets / "kafka_admin_password"),
        "KAFKA_PARTITIONS": str(DEFAULT_PARTITIONS),
        "SECRETS_DIR": str(secrets),
        "TMPDIR": str(root),
        "KAFKA_CALLS": str(calls),
    }
    result = subprocess.run(
        [sh, str(INIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    return _parse([line.split("\x1f") for line in lines])


@pytest.fixture(scope="module")
def runtimes() -> dict[str, Any]:
    from mmgen.consent.bootstrap import bootstrap as consent_bootstrap
    from mmgen.consent.settings import ConsentSettings
    from mmgen.identity.bootstrap import bootstrap as identity_bootstrap
    from mmgen.identity.settings import IdentitySettings
    from mmgen.profiles.bootstrap import bootstrap as profiles_bootstrap
    from mmgen.profiles.settings import ProfilesSettings
    from mmgen.projects.bootstrap import bootstrap as projects_bootstrap
    from mmgen.projects.settings import ProjectsSettings
    from mmgen.retention.bootstrap import bootstrap as retention_bootstrap
    from mmgen.retention.settings import RetentionSettings

    return {
        "identity": identity_bootstrap(IdentitySettings()).runtime,
        "projects": projects_bootstrap(ProjectsSettings()).runtime,
        "profiles": profiles_bootstrap(ProfilesSettings()).runtime,
        "consent": consent_bootstrap(ConsentSettings()).runtime,
        "retention": retention_bootstrap(RetentionSettings()).runtime,
    }


def needed_topics(runtime: Any) -> dict[str, set[str]]:
    """Topic -> the operations a service's code performs on it."""
    needs: dict[str, set[str]] = defaultdict(set)
    for topic in runtime.owned_topics():
        needs[topic].add("Create")  # ensure_topics at every start
    needs[runtime.events_topic].add("Write")  # the relay; republish answers go there too
    needs[heads_topic()].add("Write")  # the relay's head
    needs[republish_topic()].add("Read")  # the republish listener
    for topic in runtime.copied_event_types():
        needs[topic].add("Write")
    for topic in runtime.consumed_topics():
        needs[topic].add("Read")  # the inbox
        needs[dlq_topic(topic)].add("Write")
    for topic, operations in _own_clients(runtime.name).items():
        needs[topic] |= operations
    return dict(needs)


def _own_clients(service: str) -> dict[str, set[str]]:
    """The Kafka clients a service makes beside its runtime's."""
    if service == "consent":
        # mmgen.consent.audit: the projector reads every events topic by pattern and
        # dead-letters to <topic>.dlq, asks for repairs on audit.republish; the head watcher
        # reads events.heads; the publisher writes audit.log and, taking over, reads its tail
        # (published_seqs); the writers create the three topics first and serve requests to
        # publish audit.log entries again (reading audit.republish, as the runtime does).
        needs: dict[str, set[str]] = {
            TOPICS.audit_log: {"Create", "Write", "Read"},
            republish_topic(): {"Create", "Write"},
            heads_topic(): {"Create", "Read"},
        }
        for producer in SERVICES:
            needs[TOPICS.events(producer)] = {"Read"}
            needs[dlq_topic(TOPICS.events(producer))] = {"Write"}
        return needs
    if service == "retention":
        # mmgen.retention.adapters.audit_log: reads audit.log, dead-letters to audit.log.dlq,
        # asks for lost entries on audit.republish, creating all three.
        return {
            TOPICS.audit_log: {"Create", "Read"},
            dlq_topic(TOPICS.audit_log): {"Create", "Write"},
            republish_topic(): {"Create", "Write"},
        }
    return {}


def needed_groups(service: str, runtime: Any) -> set[str]:
    settings = runtime.settings
    groups = {settings.inbox_group, settings.commands_group, f"republish-{service}"}
    if service in ("consent", "retention"):
        groups.add(runtime.settings.audit_consumer_group)
    if service == "consent":
        groups.add(f"{runtime.settings.audit_consumer_group}-heads")
        groups.add(f"{runtime.settings.audit_consumer_group}-republish")
    return groups


def _granted_group(grants: Grants, service: str, group: str) -> set[str]:
    operations: set[str] = set()
    for (name, prefixed), ops in grants.groups[service].items():
        if group == name or (prefixed and group.startswith(name)):
            operations |= ops
    return operations


def test_the_init_job_creates_every_topic_a_service_uses(grants: Grants, runtimes) -> None:
    for service, runtime in runtimes.items():
        missing = set(needed_topics(runtime)) - set(grants.created)
        assert missing == set(), f"{service} uses topics kafka-init does not create"
    assert set(grants.created.values()) == {DEFAULT_PARTITIONS}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_granted_exactly_the_topics_its_code_uses(
    grants: Grants, runtimes, service: str
) -> None:
    """Read and Write exactly where its code reads and writes, Describe with them, Create at
    least where it creates at start-up (more is harmless: every topic exists before any service
    has a user, and the broker creates none on its own)."""
    needed = needed_topics(runtimes[service])
    granted = grants.topics[service]
    assert set(granted) == set(needed)
    for operation in ("Read", "Write"):
        assert {t for t, ops in granted.items() if operation in ops} == {
            t for t, ops in needed.items() if operation in ops
        }, operation
    assert {t for t, ops in granted.items() if "Describe" not in ops} == set()
    assert {t for t, ops in needed.items() if "Create" in ops} <= {
        t for t, ops in granted.items() if "Create" in ops
    }
    assert set().union(*granted.values()) <= {"Read", "Write", "Describe", "Create"}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_joins_its_own_consumer_groups_only(
    grants: Grants, runtimes, service: str
) -> None:
    for group in needed_groups(service, runtimes[service]):
        assert "Read" in _granted_group(grants, service, group), (service, group)
    for other in SERVICES:
        if other != service:
            for group in needed_groups(other, runtimes[other]):
                assert not _granted_group(grants, service, group), (service, group)


def test_only_the_services_that_use_kafka_get_a_user(grants: Grants) -> None:
    """One SCRAM user per service; the console and the witness use no topic and get none."""
    assert grants.users == set(SERVICES)
    assert set(grants.topics) | set(grants.groups) == set(SERVICES)


def test_every_granted_topic_exists(grants: Grants) -> None:
    for service, topics in grants.topics.items():
        assert set(topics) <= set(grants.created), service


def test_the_audit_log_reads_every_events_topic_and_publishes_audit_log(grants: Grants) -> None:
    """The check fails when a grant the audit pipeline needs is removed from the script."""
    consent = grants.topics["consent"]
    for producer in SERVICES:
        assert "Read" in consent[TOPICS.events(producer)], producer
    assert {"Read", "Write"} <= consent[TOPICS.audit_log]
    assert "Read" in consent[heads_topic()]
    assert "Read" in grants.topics["retention"][TOPICS.audit_log]
    assert "Write" in grants.topics["retention"][TOPICS.retention_commands]
    # retention asks for audit.log entries again; consent (its audit log) reads the requests
    assert "Write" in grants.topics["retention"][republish_topic()]
    assert "Read" in consent[republish_topic()]
    assert "Read" not in grants.topics["identity"].get(TOPICS.events("identity"), set())

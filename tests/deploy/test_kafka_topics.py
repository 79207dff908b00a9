"""The Kafka init job creates every topic the services create at start-up, so theirs (made with
replication factor 1) never come first, and grants every service the topics it uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

INIT = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "kafka" / "kafka-init.sh"


def created_topics() -> set[str]:
    script = INIT.read_text()
    events = re.search(r'^EVENTS="([^"]+)"', script, re.M)
    others = re.search(r"^for name in ([^;]+); do\n    topic ", script, re.M)
    assert events and others
    names = set(events.group(1).split())
    return names | {f"{name}.dlq" for name in names} | set(others.group(1).split())


def granted(service: str) -> set[str]:
    """Topics named in the script's produce/consume lines for `service` (or for all)."""
    script = INIT.read_text()
    events = re.search(r'^EVENTS="([^"]+)"', script, re.M).group(1)  # type: ignore[union-attr]
    topics: set[str] = set()
    for line in re.findall(r"^\s*(?:produce|consume) (\S+) (.+)$", script, re.M):
        who, rest = line
        if who in (service, '"$service"'):
            words = rest.replace("$EVENTS", events).replace('"$service"', service).split()
            topics.update(word.strip('"') for word in words)
    return topics


@pytest.fixture(scope="module")
def runtimes() -> dict[str, object]:
    from mmgen.consent.bootstrap import bootstrap as consent_bootstrap
    from mmgen.consent.settings import ConsentSettings
    from mmgen.identity.bootstrap import bootstrap as identity_bootstrap
    from mmgen.identity.settings import IdentitySettings

    return {
        "identity": identity_bootstrap(IdentitySettings()).runtime,
        "consent": consent_bootstrap(ConsentSettings()).runtime,
    }


@pytest.mark.parametrize("service", ["identity", "consent"])
def test_the_init_job_creates_every_topic_a_service_creates(runtimes, service: str) -> None:
    owned = set(runtimes[service].owned_topics())  # type: ignore[attr-defined]
    assert owned - created_topics() == set()


@pytest.mark.parametrize("service", ["identity", "consent"])
def test_every_topic_a_service_reads_is_granted(runtimes, service: str) -> None:
    consumed = set(runtimes[service].consumed_topics())  # type: ignore[attr-defined]
    assert consumed
    assert consumed - granted(service) == set()


def test_the_audit_log_reads_every_events_topic_and_publishes_audit_log() -> None:
    topics = granted("consent")
    assert {"identity.events", "retention.events", "events.heads", "audit.log"} <= topics
    assert {"audit.log", "retention.commands"} <= granted("retention")

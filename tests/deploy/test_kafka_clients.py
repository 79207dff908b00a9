"""Every Kafka client the services make is given the deployment's security settings.

The deploy files run Kafka with SASL/SCRAM only; a client made without the service's security
options (`security.client_config()`, a `security=` argument, or options assembled from them)
never connects there, and what it serves stops. This scans the services' and libraries' code
for each construction of an aiokafka client or a FastStream broker.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENTS = frozenset(
    {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient", "KafkaBroker"}
)
#: Constructions that never reach a deployed broker, and why.
EXEMPT = {
    "libs/events/src/mmgen/events/kafka_testing.py": "test helpers against the local broker",
    "libs/runtime/src/mmgen/runtime/testing.py": "test helpers against the local broker",
    "libs/events/src/mmgen/events/asyncapi.py": "builds a document, connects to nothing",
}


def _sources() -> list[Path]:
    roots = [*REPO.glob("libs/*/src"), *REPO.glob("services/*/src")]
    return sorted(path for root in roots for path in root.rglob("*.py"))


def _name(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def _is_given_security(call: ast.Call) -> bool:
    """`security=...`, or options spread in (`**security.client_config()`, `**config` built
    from it): a plain `AIOKafkaConsumer(bootstrap_servers=...)` is what this refuses."""
    return any(keyword.arg in (None, "security") for keyword in call.keywords)


def constructions() -> list[tuple[str, int, str, bool]]:
    found = []
    for path in _sources():
        relative = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
            if isinstance(node, ast.Call) and _name(node) in CLIENTS:
                found.append((relative, node.lineno, str(_name(node)), _is_given_security(node)))
    return found


def test_every_kafka_client_is_given_the_services_security() -> None:
    found = constructions()
    assert len(found) >= 8, "the scan finds the clients (relay, inbox, republish, audit log...)"
    unsecured = [
        f"{path}:{line} {name}"
        for path, line, name, secured in found
        if not secured and path not in EXEMPT
    ]
    assert unsecured == []


def test_the_exemptions_are_still_needed() -> None:
    """An exempt file that no longer makes a client is dropped from the list."""
    files = {path for path, _, _, secured in constructions() if not secured}
    assert set(EXEMPT) <= files

"""Issue 16: every service's `/metrics` parses as Prometheus exposition and has the series that
the alert rules and dashboards in deploy/ query.

The expected names are read from `deploy/observability` (alert expressions and dashboard
queries, parsed as PromQL), so a rule or panel naming a series no service exports fails here,
and so does a service that stops exporting one. Every service runs in this process with its
lifespan (the runtime's relay, inbox and projections register their metrics as they start), on
the session's broker and database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mmgen.auditlog.checkpoint import NoteSigner
from mmgen.auditlog.cosignature import CosignatureSigner
from mmgen.consent.entrypoints.app import build_app as consent_app
from mmgen.consent.settings import ConsentSettings
from mmgen.identity.entrypoints.app import build_app as identity_app
from mmgen.identity.settings import IdentitySettings
from mmgen.localstack.pytest_plugin import Infra
from mmgen.profiles.entrypoints.app import build_app as profiles_app
from mmgen.profiles.settings import ProfilesSettings
from mmgen.projects.entrypoints.app import build_app as projects_app
from mmgen.projects.settings import ProjectsSettings
from mmgen.retention.entrypoints.app import build_app as retention_app
from mmgen.retention.settings import RetentionSettings
from mmgen.runtime.testing import Tokens, running_app, service_settings
from mmgen.witness.app import build_app as witness_app
from mmgen.witness.settings import WitnessSettings

OBSERVABILITY = Path(__file__).resolve().parents[1] / "deploy" / "observability"
#: Series Prometheus and the blackbox exporter make themselves, not the services.
SCRAPE_SERIES = {"up", "probe_success", "probe_duration_seconds"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}
#: Sample names of each metric type as the exposition shows them.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "info": ("_info",),
    "unknown": ("",),
}
#: What every service exports, whatever deploy/ queries (the platform's own series).
PLATFORM_SERIES = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_requests_in_flight",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "python_info",
    "mmgen_build_info",
}
RUNTIME_SERVICES = ("identity", "projects", "profiles", "consent", "retention")


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def referenced_series() -> set[str]:
    """Every series name an alert rule or a dashboard panel in deploy/ selects."""
    rules = yaml.safe_load((OBSERVABILITY / "prometheus" / "alerts.yaml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    for path in sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                exprs.append(expr)
    names: set[str] = set()
    for expr in exprs:
        names |= metric_names(expr)
    return names - SCRAPE_SERIES


def exposed(text: str) -> set[str]:
    """The sample names a `/metrics` body offers (labelled families without children too)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(f"{family.name}{suffix}" for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def build(service: str, infra: Infra, tmp_path: Path, prefix: str) -> Any:
    key_set = Tokens.generate().key_set()
    if service == "witness":
        return witness_app(
            WitnessSettings(
                environment="test",
                log_json=False,
                signing_key=CosignatureSigner.generate("witness.test").to_string(),
                log_keys=(NoteSigner.generate("log.test/audit").verifier().to_string(),),
                store_dir=tmp_path / "witness",
            )
        )
    if service == "identity":
        return identity_app(
            service_settings(
                IdentitySettings,
                infra,
                topic_prefix=prefix,
                smtp_host=infra.smtp_host,
                smtp_port=infra.smtp_port,
            )
        )
    factories: dict[str, tuple[Any, Any]] = {
        "projects": (projects_app, ProjectsSettings),
        "profiles": (profiles_app, ProfilesSettings),
        "consent": (consent_app, ConsentSettings),
        "retention": (retention_app, RetentionSettings),
    }
    factory, settings_class = factories[service]
    settings = service_settings(settings_class, infra, topic_prefix=prefix)
    return factory(settings, key_set=key_set)


@pytest.fixture(scope="module")
def scraped(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Each service's `/metrics`, parsed, while it runs (after one ordinary request)."""
    return asyncio.run(scrape(infra, tmp_path_factory))


async def scrape(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    found: dict[str, set[str]] = {}
    for service in (*RUNTIME_SERVICES, "witness"):
        app = build(service, infra, tmp_path_factory.mktemp(service), prefix)
        async with running_app(app, drop_database=service != "witness") as (_, client):
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            found[service] = exposed(response.text)
    return found


def test_the_rules_and_dashboards_name_series_at_all() -> None:
    names = referenced_series()
    assert {"mmgen_events_relay_hole_at", "mmgen_audit_gap_missing_events"} <= names


def test_every_service_exports_the_platform_series(scraped: dict[str, set[str]]) -> None:
    for service, names in scraped.items():
        assert names >= PLATFORM_SERIES, (service, sorted(PLATFORM_SERIES - names))


def test_every_series_deploy_queries_is_exported(scraped: dict[str, set[str]]) -> None:
    """Relay, consumer and projection series by every service on the runtime; the audit log's
    by consent; HTTP series by all; anything else by at least one service."""
    everywhere = set.union(*scraped.values())
    missing: dict[str, list[str]] = {}
    for name in sorted(referenced_series()):
        if name.startswith("mmgen_events_"):
            owners: tuple[str, ...] = RUNTIME_SERVICES
        elif name.startswith("mmgen_audit_"):
            owners = ("consent",)
        elif name.startswith("http_"):
            owners = tuple(scraped)
        else:
            owners = ()
        lacking = [s for s in owners if name not in scraped[s]]
        if lacking or name not in everywhere:
            missing[name] = lacking or ["every service"]
    assert missing == {}

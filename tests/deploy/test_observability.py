"""Alert rules, dashboards and collector/scrape configs name only series the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from mmgen.consent.adapters.metrics import TrackingMetrics
from mmgen.consent.audit.metrics import AuditMetrics
from mmgen.events.consumer import ConsumerMetrics
from mmgen.events.relay import RelayMetrics
from mmgen.events.tailer import TailerMetrics
from mmgen.platform.metrics import HttpMetrics
from mmgen.retention.adapters.metrics import RetentionMetrics

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yaml"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
#: Series Prometheus and the blackbox exporter make themselves.
SCRAPE_SERIES = {"up", "probe_success", "probe_duration_seconds"}
#: The sample names each metric type exposes (prometheus_client's exposition).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "info": ("_info",),
}
#: Grafana's variables, replaced by a value so the query parses as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every series name the platform's metric classes register, as /metrics shows them."""
    registry = CollectorRegistry()
    HttpMetrics(registry)
    RelayMetrics(registry)
    ConsumerMetrics(registry)
    TailerMetrics(registry)
    AuditMetrics(registry)
    TrackingMetrics(registry)
    RetentionMetrics(registry)
    names = set()
    for family in registry.collect():
        names.update(f"{family.name}{suffix}" for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (ValueError if it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_the_exported_names_are_the_ones_the_code_documents(exported: set[str]) -> None:
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "mmgen_events_relay_hole_at",
        "mmgen_events_relay_checkpoint",
        "mmgen_events_consumer_dead_lettered_total",
        "mmgen_events_consumer_stalled_attempts",
        "mmgen_events_tailer_errors_total",
        "mmgen_audit_gap_missing_events",
    } <= exported


def test_an_unknown_metric_is_caught(exported: set[str]) -> None:
    assert metric_names("rate(mmgen_events_relay_publishd_total[5m]) > 0") - exported == {
        "mmgen_events_relay_publishd_total"
    }
    with pytest.raises(ValueError, match="parenthesis"):
        metric_names("rate(mmgen_events_relay_published_total[5m]")


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_alert_expressions_parse_and_name_exported_series(
    rules: list[dict[str, Any]], exported: set[str]
) -> None:
    unknown = {}
    for rule in rules:
        missing = metric_names(rule["expr"]) - exported - SCRAPE_SERIES
        if missing:
            unknown[rule["alert"]] = sorted(missing)
    assert unknown == {}


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)"
)
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    """Prometheus' own linter, and alerts.test.yaml: each tested rule fires when it should."""
    promtool = shutil.which("promtool")
    assert promtool is not None
    for args in (["check", "rules", ALERTS.name], ["test", "rules", "alerts.test.yaml"]):
        done = subprocess.run(
            [promtool, *args], cwd=ALERTS.parent, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_operators_asked_for_are_there(rules: list[dict[str, Any]]) -> None:
    by_name = {rule["alert"]: rule for rule in rules}
    wanted = {
        "MmgenRelayStuck": "mmgen_events_relay_hole_at",
        "MmgenAuditGapOpen": "mmgen_audit_gap_missing_events",
        "MmgenConsumerStalled": "mmgen_events_consumer_stalled_attempts",
        "MmgenMessagesDeadLettered": "mmgen_events_consumer_dead_lettered_total",
        "MmgenAuditDeadLettered": "mmgen_audit_dead_lettered_total",
        "MmgenServiceNotReady": "probe_success",
        "MmgenPrivacyRequestNearDeadline": "mmgen_retention_privacy_request_deadline_seconds",
        "MmgenPrivacyRequestOverdue": "mmgen_retention_privacy_requests_overdue",
    }
    for alert, series in wanted.items():
        assert series in metric_names(by_name[alert]["expr"]), alert
    assert by_name["MmgenAuditGapOpen"]["for"] == "5m"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_query_exported_series(path: Path, exported: set[str]) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem
    datasources = yaml.safe_load(
        (
            OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
        ).read_text()
    )
    uids = {source["uid"] for source in datasources["datasources"]}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and ids
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            missing = metric_names(expr) - exported - SCRAPE_SERIES
            assert not missing, f"{panel['title']}: {sorted(missing)}"


def test_prometheus_loads_the_rules_and_has_the_jobs_they_name() -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"mmgen-services", "mmgen-readyz"} <= set(jobs)
    probe = jobs["mmgen-readyz"]["relabel_configs"]
    assert {"target_label": "probe", "replacement": "readyz"} in probe
    text = ALERTS.read_text()
    assert 'job="mmgen-services"' in text and 'probe="readyz"' in text


def test_the_collector_pipeline_uses_only_what_it_defines() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    for pipeline in config["service"]["pipelines"].values():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline[part]) <= set(config[part]), part
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_every_service_of_compose_is_scraped_probed_and_traced(compose_model, compose_env) -> None:  # type: ignore[no-untyped-def]
    """Each of our images in compose (the console included) has its /metrics scraped, its
    /readyz probed and OTLP set by the observability layer."""
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    registry = compose_env["MMGEN_IMAGE_REGISTRY"]
    ours = {
        name: service
        for name, service in compose_model["services"].items()
        if str(service.get("image", "")).startswith(f"{registry}/{name}:")
    }
    assert {"identity", "console", "witness"} <= set(ours)
    for job in ("mmgen-services", "mmgen-readyz"):
        targets = {(entry["names"][0], entry["port"]) for entry in jobs[job]["dns_sd_configs"]}
        for name, service in ours.items():
            port = int(service["environment"][f"{name.upper()}_PORT"])
            assert (name, port) in targets, (job, name)
    for name, service in ours.items():
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in service["environment"], name

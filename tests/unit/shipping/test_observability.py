"""Alerts and dashboard: every query names a metric a running ``serve`` really exports.

The metrics come from the live /metrics of the service after the sandbox's demo (see
conftest.py); the alerts and the dashboard from what Helm renders with them switched on.
The PrometheusRule is checked against the fields of the Prometheus Operator's CRD
(monitoring.coreos.com/v1), strictly: a misspelt key would be pruned silently by the API
server, so here it is an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import jsonschema
import promql_parser
import pytest

from tests.unit.shipping.conftest import (
    OBSERVABILITY,
    REPO,
    Exposition,
    metric_names,
    of_kind,
    render,
)

OPERATIONS_MD: Final = REPO / "docs" / "operations.md"
# The duration pattern of the CRD's "for" and "interval" fields.
DURATION: Final = (r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                   r"(([0-9]+)s)?(([0-9]+)ms)?)$")
STRINGS: Final = {"type": "object", "additionalProperties": {"type": "string"}}
# The fields of PrometheusRule.spec (prometheus-operator's CRD), closed to unknown keys.
RULE_SPEC_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groups"],
    "properties": {"groups": {"type": "array", "minItems": 1, "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "rules"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "interval": {"type": "string", "pattern": DURATION},
            "labels": STRINGS,
            "limit": {"type": "integer"},
            "rules": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["alert", "expr", "labels", "annotations"],
                "properties": {
                    "alert": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9]*$"},
                    "expr": {"type": "string", "minLength": 1},
                    "for": {"type": "string", "pattern": DURATION},
                    "keep_firing_for": {"type": "string", "pattern": DURATION},
                    "labels": {**STRINGS, "required": ["severity"],
                               "properties": {"severity": {"enum": ["warning", "critical"]}}},
                    "annotations": {**STRINGS, "required": ["summary", "description",
                                                            "runbook"]},
                },
            }},
        },
    }}},
}


def alert_ids(rules: list[dict[str, Any]]) -> list[str]:
    return [rule["alert"] for rule in rules]


def rendered_alerts() -> list[dict[str, Any]]:
    rule = of_kind(render(OBSERVABILITY), "PrometheusRule")[0]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


ALERTS: Final = rendered_alerts()


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


# --- the metric names ---------------------------------------------------------------------


@pytest.mark.parametrize("alert", ALERTS, ids=alert_ids(ALERTS))
def test_every_alert_names_only_exported_metrics(alert: dict[str, Any],
                                                 live_metrics: Exposition) -> None:
    names = metric_names(alert["expr"])
    assert names, "an alert on no metric of the connector"
    missing = sorted(n for n in names if not live_metrics.exports(n))
    assert missing == [], f"{alert['alert']} names metrics /metrics does not export"


def test_every_dashboard_query_names_only_exported_metrics(
    dashboard: dict[str, Any], live_metrics: Exposition
) -> None:
    queries = [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"]
                if v["type"] == "query"]
    missing = {name: query for query in queries for name in metric_names(query)
               if not live_metrics.exports(name)}
    assert missing == {}


def test_the_name_check_refuses_what_is_not_exported(live_metrics: Exposition) -> None:
    # The two tests above mean something only if the check can say no.
    assert live_metrics.exports("hubject_connector_hubject_requests_total")
    assert live_metrics.exports("hubject_connector_flow_delivery_delay_seconds_bucket")
    assert not live_metrics.exports("hubject_connector_dead_letters")
    # A counter has no buckets; a histogram is queried through its series only.
    assert not live_metrics.exports("hubject_connector_hubject_requests_total_bucket")
    assert not live_metrics.exports("hubject_connector_flow_delivery_delay_seconds_total")


def test_every_panel_queries_something_and_uses_the_chosen_data_source(
    dashboard: dict[str, Any],
) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(metric_names(t["expr"]) for t in panel["targets"]), panel["title"]
        assert panel["description"], panel["title"]


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


# --- the PrometheusRule ----------------------------------------------------------------------


def test_the_prometheus_rule_keeps_to_the_crd_fields() -> None:
    rule = of_kind(render(OBSERVABILITY), "PrometheusRule")[0]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    jsonschema.validate(rule["spec"], RULE_SPEC_SCHEMA)


def test_the_rule_schema_really_refuses_a_misspelt_key() -> None:
    rule = of_kind(render(OBSERVABILITY), "PrometheusRule")[0]
    rule["spec"]["groups"][0]["rules"][0]["annotation"] = {"summary": "typo"}
    with pytest.raises(jsonschema.ValidationError, match="annotation"):
        jsonschema.validate(rule["spec"], RULE_SPEC_SCHEMA)


def test_alerts_and_dashboard_are_off_unless_enabled() -> None:
    kinds = {obj["kind"] for obj in render()}
    assert "PrometheusRule" not in kinds
    assert not any("hubject-connector.json" in obj.get("data", {})
                   for obj in render() if obj["kind"] == "ConfigMap")


def test_the_certificate_expiry_window_comes_from_the_values() -> None:
    values = {"prometheusRule": {"enabled": True, "certificateExpiryDays": 30}}
    rule = of_kind(render(values), "PrometheusRule")[0]
    expiring = next(r for g in rule["spec"]["groups"] for r in g["rules"]
                    if r["alert"] == "HubjectConnectorClientCertificateExpiring")
    assert "hubject_connector_client_certificate_not_after_timestamp_seconds" in expiring["expr"]
    assert re.search(r"<\s*30\s*\*\s*86400", expiring["expr"])


def test_the_required_alerts_exist() -> None:
    # Issue 11: certificate expiry, dead letters, Hubject errors, remote-start timeouts,
    # status push lag.
    by_metric = {alert["alert"]: metric_names(alert["expr"]) for alert in ALERTS}
    wanted = {
        "hubject_connector_client_certificate_not_after_timestamp_seconds",
        "hubject_connector_flow_messages_dead_lettered_total",
        "hubject_connector_hubject_requests_total",
        "hubject_connector_inbound_command_timeouts_total",
        "hubject_connector_flow_delivery_delay_seconds_bucket",
    }
    assert wanted <= set().union(*by_metric.values())


def test_prometheus_labels_survive_helm(alert_rules: list[dict[str, Any]]) -> None:
    # {{ $labels.x }} is Prometheus' placeholder; Helm must leave it in the summary.
    summaries = [rule["annotations"]["summary"] for rule in alert_rules]
    assert all("{{" in summary and "$" in summary for summary in summaries)


def test_every_alert_and_dashboard_query_parses_as_promql(dashboard: dict[str, Any]) -> None:
    queries = [alert["expr"] for alert in ALERTS]
    # Grafana fills in its interval variables before Prometheus sees a query.
    queries += [re.sub(r"\$__\w+", "5m", target["expr"])
                for panel in panels(dashboard) for target in panel["targets"]]
    for query in queries:
        promql_parser.parse(query)


def test_the_promql_parser_refuses_a_broken_query() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the parser raises a plain ValueError
        promql_parser.parse("rate(hubject_connector_hubject_requests_total[5m]")


# --- ServiceMonitor ---------------------------------------------------------------------------


def test_the_service_monitor_scrapes_the_ops_port_of_the_service() -> None:
    objects = render(OBSERVABILITY)
    monitor = of_kind(objects, "ServiceMonitor")[0]
    service = of_kind(objects, "Service")[0]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["port"] == "ops"


# --- docs/operations.md -----------------------------------------------------------------------


def anchors(markdown: Path) -> set[str]:
    """GitHub's anchors of the headings of a Markdown file."""
    found: set[str] = set()
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            found.add(slug)
    return found


@pytest.mark.parametrize("alert", ALERTS, ids=alert_ids(ALERTS))
def test_every_alert_is_explained_with_a_runbook_in_operations_md(alert: dict[str, Any]) -> None:
    text = OPERATIONS_MD.read_text(encoding="utf-8")
    assert f"`{alert['alert']}`" in text
    document, _, anchor = alert["annotations"]["runbook"].partition("#")
    assert document == "docs/operations.md"
    assert anchor in anchors(OPERATIONS_MD)


def metric_rows(markdown: Path) -> dict[str, tuple[str, set[str]]]:
    """The metrics table of operations.md: name -> (type, label names)."""
    rows: dict[str, tuple[str, set[str]]] = {}
    for line in markdown.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(hubject_connector_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", line)
        if match:
            labels = set(re.findall(r"`([a-z_]+)`", match.group(3)))
            rows[match.group(1)] = (match.group(2), labels)
    return rows


def test_operations_md_lists_every_exported_metric_with_its_type_and_labels(
    live_metrics: Exposition,
) -> None:
    rows = metric_rows(OPERATIONS_MD)
    exported = live_metrics.ours()
    assert sorted(set(exported) - set(rows)) == [], "metrics missing from docs/operations.md"
    assert sorted(set(rows) - set(exported)) == [], "documented metrics /metrics does not export"
    for name, family in exported.items():
        kind, labels = rows[name]
        assert kind == family.type, name
        if family.has_samples:  # label names show only on samples
            assert labels == set(family.labels), name


def test_operations_md_explains_every_readiness_check(live_metrics: Exposition) -> None:
    checks = set(re.findall(r'^hubject_connector_ready\{check="([a-z_]+)"\}', live_metrics.text,
                            re.MULTILINE))
    assert checks
    text = OPERATIONS_MD.read_text(encoding="utf-8")
    section = text.split("## Readiness", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert documented == checks

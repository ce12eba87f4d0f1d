"""The Helm chart, checked by Helm's own Go SDK (helm-python-sdk) and the Kubernetes schemas.

Helm lints and renders the chart offline for the default values and for the sidecar values;
every rendered core object validates against the Kubernetes OpenAPI schemas (strict: an
unknown field is an error); values.schema.json accepts values.yaml and refuses bad values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "hubject-connector"
SIDECAR_VALUES = CHART / "values-sidecar.yaml"
# Kinds that Kubernetes itself defines; custom resources (ServiceMonitor, PrometheusRule)
# are checked by their own tests below.
CORE_KINDS = {"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim",
              "PodDisruptionBudget"}
KUBE_VERSION = kubernetes_validate.latest_version()
# Every optional part switched on, to render and check them all.
EVERYTHING = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
              "grafanaDashboard": {"enabled": True}}


def sidecar_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(SIDECAR_VALUES.read_text())
    return values


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders with ``values`` (on top of values.yaml)."""
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values, name="hc", namespace="emobility", is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if not path.endswith((".yaml", ".yml")):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {obj["kind"] for obj in objects}


@pytest.mark.parametrize("values", [None, "sidecar", EVERYTHING], ids=["default", "sidecar",
                                                                     "everything"])
def test_helm_lint_is_clean(values: Any) -> None:
    given = sidecar_values() if values == "sidecar" else values
    report = helm.lint(CHART, given, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [], report
    assert problems == [], report


def test_lint_reports_a_broken_chart(tmp_path: Path) -> None:
    # The lint above means something only if a broken chart is reported.
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "x.yaml").write_text("kind: ConfigMap\n{{ .Values.nope.deeper }}\n")
    report = helm.lint(tmp_path, strict=True)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


@pytest.mark.parametrize("values", [None, "sidecar", EVERYTHING], ids=["default", "sidecar",
                                                                     "everything"])
def test_rendered_core_objects_validate_against_kubernetes_schemas(values: Any) -> None:
    given = sidecar_values() if values == "sidecar" else values
    objects = render(given)
    core = [obj for obj in objects if obj["kind"] in CORE_KINDS]
    assert core
    for obj in core:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_the_schema_validation_really_refuses_a_bad_object() -> None:
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_standalone_renders_a_deployment_with_probes_on_the_ops_port() -> None:
    objects = render()
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds(objects)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_certificates_come_from_secrets_mounted_whole_so_rotation_reaches_them() -> None:
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert set(secrets.values()) == {"hubject-connector-client", "hubject-connector-server",
                                     "hubject-connector-hubject-ca"}
    mounts = pod["containers"][0]["volumeMounts"]
    for mount in mounts:
        if mount["name"] in secrets:
            # A subPath mount is a copy that never sees a renewed Secret.
            assert "subPath" not in mount
            assert mount["readOnly"] is True


def test_sidecar_mode_renders_no_workload_but_the_container_to_paste() -> None:
    objects = render(sidecar_values())
    assert "Deployment" not in kinds(objects)
    assert "Service" not in kinds(objects)
    snippet = next(o for o in objects if o["metadata"]["name"].endswith("-sidecar"))
    container = yaml.safe_load(snippet["data"]["container.yaml"])
    volumes = yaml.safe_load(snippet["data"]["volumes.yaml"])
    # The snippet is a valid container of a pod: validate it inside one.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "backend"},
           "spec": {"containers": [container], "volumes": volumes}}
    kubernetes_validate.validate(pod, KUBE_VERSION, strict=True)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_values_schema_accepts_the_defaults_and_the_sidecar_values() -> None:
    chart = helm.Chart.load(CHART)
    chart.validate_schema(chart.values)
    chart.validate_schema(chart.merge_values(sidecar_values()))


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"mode": "daemonset"}, "mode"),
        ({"ports": {"inbound": 70000, "ops": 9090}}, "inbound"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"serviceMonitor": {"interval": "often"}}, "interval"),
        ({"unknownKey": True}, "unknownKey"),
    ],
)
def test_values_schema_refuses_a_bad_value(bad: dict[str, Any], named: str) -> None:
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(chart.merge_values(bad))
    assert named in str(caught.value)

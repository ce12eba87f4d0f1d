"""A running ``serve``'s live /metrics, and what the chart renders, for the shipping tests.

``live_metrics`` runs the sandbox in this process once per session: the simulator as
Hubject, the service (``app.Service``) on the embedded bus and SQLite state, the demo
backend as a subprocess and a remote start from the simulator as EMP, so that the labelled
series exist too; then it reads GET /metrics from the ops server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import helm_python as helm
import pytest
import yaml

from hubject_connector.sandbox import Ports, Sandbox, SandboxOptions

REPO: Final = Path(__file__).resolve().parents[3]
CHART: Final = REPO / "helm" / "hubject-connector"
PREFIX: Final = "hubject_connector_"
METRIC_NAME: Final = re.compile(r"\bhubject_connector_[a-zA-Z0-9_]+")
_TYPE_LINE: Final = re.compile(r"^# TYPE (\S+) (\S+)$")
_SAMPLE: Final = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ")
_LABEL: Final = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Family:
    """One metric family of an exposition: its type and the label names seen on samples."""

    name: str
    type: str
    labels: frozenset[str]
    has_samples: bool


@dataclass
class Exposition:
    """A Prometheus text exposition, parsed into families."""

    text: str
    families: dict[str, Family] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Exposition:
        types: dict[str, str] = {}
        labels: dict[str, set[str]] = {}
        sampled: set[str] = set()
        for line in text.splitlines():
            declared = _TYPE_LINE.match(line)
            if declared:
                types[declared.group(1)] = declared.group(2)
                labels.setdefault(declared.group(1), set())
                continue
            sample = _SAMPLE.match(line)
            if sample is None or line.startswith("#"):
                continue
            family = _family_of(sample.group(1), types)
            if family is None:
                continue
            sampled.add(family)
            names = {m.group(1) for m in _LABEL.finditer(sample.group(2) or "")}
            labels[family].update(names - {"le", "quantile"})
        created = {name for name in types if _is_created_series(name, types)}
        families = {
            name: Family(name, kind, frozenset(labels[name]), name in sampled)
            for name, kind in types.items() if name not in created
        }
        return cls(text, families)

    def exports(self, name: str) -> bool:
        """Whether a query may name ``name``: a family, or a histogram's or summary's series."""
        if name in self.families:
            return True
        for suffix, kinds in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                              ("_count", {"histogram", "summary"})):
            if name.endswith(suffix):
                base = self.families.get(name.removesuffix(suffix))
                return base is not None and base.type in kinds
        return False

    def ours(self) -> dict[str, Family]:
        """The families with the connector's prefix."""
        return {name: f for name, f in self.families.items() if name.startswith(PREFIX)}


def _family_of(sample: str, types: dict[str, str]) -> str | None:
    if sample in types:
        return sample
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
        if sample.endswith(suffix) and sample.removesuffix(suffix) in types:
            return sample.removesuffix(suffix)
    return None


def _is_created_series(name: str, types: dict[str, str]) -> bool:
    # prometheus_client writes a "<name>_created" gauge beside counters and histograms
    # (when they were created); it belongs to that family, it is not a metric of its own.
    if not name.endswith("_created") or types[name] != "gauge":
        return False
    base = name.removesuffix("_created")
    return types.get(base) in ("counter", "histogram", "summary") or \
        types.get(base + "_total") == "counter"


def metric_names(query: str) -> set[str]:
    """Every name with the connector's prefix that a PromQL query mentions."""
    return set(METRIC_NAME.findall(query))


async def _read_live_metrics(directory: Path) -> str:
    lines: list[str] = []
    options = SandboxOptions(directory=directory, ports=Ports.auto())
    async with Sandbox(options, out=lines.append, echo=lines.append) as sandbox:
        report = await sandbox.run_demo()
        assert report.ok, "\n".join([*lines, *report.lines()])
        assert sandbox.service is not None
        async with aiohttp.ClientSession() as session, \
                session.get(sandbox.service.ops_url + "/metrics") as response:
            assert response.status == 200
            return await response.text()


@pytest.fixture(scope="session")
def live_metrics(tmp_path_factory: pytest.TempPathFactory) -> Exposition:
    """GET /metrics of a running service after the sandbox's demo went through it."""
    text = asyncio.run(_read_live_metrics(tmp_path_factory.mktemp("sandbox")))
    return Exposition.parse(text)


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders with ``values`` (on top of values.yaml)."""
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values, name="hc", namespace="emobility", is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if path.endswith((".yaml", ".yml")):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


OBSERVABILITY: Final = {"prometheusRule": {"enabled": True},
                        "grafanaDashboard": {"enabled": True},
                        "serviceMonitor": {"enabled": True}}


@pytest.fixture(scope="session")
def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rendered PrometheusRule."""
    rule = of_kind(render(OBSERVABILITY), "PrometheusRule")
    assert len(rule) == 1
    return [r for group in rule[0]["spec"]["groups"] for r in group["rules"]]


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    """The Grafana dashboard, as the chart's ConfigMap carries it."""
    maps = [m for m in of_kind(render(OBSERVABILITY), "ConfigMap")
            if "hubject-connector.json" in m.get("data", {})]
    assert len(maps) == 1
    loaded: dict[str, Any] = json.loads(maps[0]["data"]["hubject-connector.json"])
    return loaded

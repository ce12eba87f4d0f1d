"""The ops server: what an orchestrator and Prometheus ask the running service.

Plain HTTP on ``ops.host``/``ops.port``, never exposed to Hubject:

* ``GET /metrics``: every metric of the service's registry, Prometheus text format;
* ``GET /healthz``: the process is alive (its event loop answers): always 200;
* ``GET /readyz``: 200 only when every readiness check passes, else 503 with a JSON body
  naming each check that fails and why.

Readiness is answered from what the process already knows (is the bus connected, the state
store open, the certificates loaded and in date). It never sends anything to Hubject:
design.md, "Never call Hubject only to see whether it is up".

The checks are functions handed in by the application (``app.py``), so this module knows
no part of the connector and imports none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: A readiness check: ``None`` when ready, otherwise why not (one sentence).
Check = Callable[[], str | None]

#: Paths served, for the OpenAPI document's test and for callers.
METRICS_PATH: Final = "/metrics"
HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one readiness check."""

    name: str
    ready: bool
    #: Why it is not ready; ``None`` when it is.
    reason: str | None


class Readiness:
    """Named readiness checks, evaluated in the order given, each time they are asked."""

    def __init__(self, checks: Mapping[str, Check] | Iterable[tuple[str, Check]] = ()) -> None:
        items = checks.items() if isinstance(checks, Mapping) else checks
        self._checks: dict[str, Check] = dict(items)

    def add(self, name: str, check: Check) -> None:
        """Add (or replace) the check ``name``."""
        self._checks[name] = check

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the checks, in order."""
        return tuple(self._checks)

    def results(self) -> list[CheckResult]:
        """Every check's outcome now. A check that raises counts as not ready, with why."""
        results: list[CheckResult] = []
        for name, check in self._checks.items():
            try:
                reason = check()
            except Exception as exc:  # a broken check must not break the probe
                reason = f"the check failed: {type(exc).__name__}: {exc}"
            results.append(CheckResult(name, reason is None, reason))
        return results

    def is_ready(self) -> bool:
        """Whether every check passes now."""
        return all(result.ready for result in self.results())


class ReadinessCollector(Collector):
    """Exposes each readiness check as ``hubject_connector_ready{check="..."}`` (1 or 0).

    Evaluated at scrape time, so an alert can say which part is down without anyone
    polling ``/readyz``.
    """

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauge family, one sample per check."""
        family = GaugeMetricFamily(
            "hubject_connector_ready",
            "Whether a readiness check of the service passes (1) or not (0), by check.",
            labels=("check",),
        )
        for result in self._readiness.results():
            family.add_metric((result.name,), 1.0 if result.ready else 0.0)
        yield family


REGISTRY: Final = web.AppKey("ops_registry", CollectorRegistry)
READINESS: Final = web.AppKey("ops_readiness", Readiness)
#: When the process started (Unix time), shown by /healthz.
STARTED_AT: Final = web.AppKey("ops_started_at", float)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the service's registry."""
    body = generate_latest(request.app[REGISTRY])
    # CONTENT_TYPE_LATEST carries the format version and charset parameters, which
    # aiohttp's content_type argument cannot; pass it as a header.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process runs and its event loop answers. Checks nothing else."""
    uptime = max(0.0, time.time() - request.app[STARTED_AT])
    return web.json_response({"status": "alive", "uptime_seconds": round(uptime, 3)})


async def readyz(request: web.Request) -> web.Response:
    """200 when every check passes; 503 naming each one that does not."""
    results = request.app[READINESS].results()
    ready = all(result.ready for result in results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {result.name: result.reason or "ok" for result in results},
        "not_ready": {result.name: result.reason for result in results if not result.ready},
    }
    # Not cached by a proxy in between: the answer changes from one second to the next.
    return web.json_response(
        body, status=200 if ready else 503, headers={"Cache-Control": "no-store"}
    )


def setup_ops(app: web.Application, *, registry: CollectorRegistry, readiness: Readiness) -> None:
    """Add the ops routes to ``app``, reading metrics from ``registry``."""
    app[REGISTRY] = registry
    app[READINESS] = readiness
    app[STARTED_AT] = time.time()
    app.router.add_get(METRICS_PATH, metrics)
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(READY_PATH, readyz)

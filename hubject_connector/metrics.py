"""Prometheus metrics. Every name starts with ``hubject_connector_``.

Metrics live on a registry that is passed in, so tests use a fresh ``CollectorRegistry``
and the service its own. A metric family can be registered once per registry; every set
of metrics derives from ``RegistryMetrics``, whose ``for_registry`` hands out one shared set
per registry and class.
"""

from __future__ import annotations

import threading
import weakref
from typing import ClassVar, Final, Self

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Label value used where an attempt got no HTTP answer or no OICP status code.
NONE: Final = "none"

# Hubject answers within a few hundred milliseconds usually; AuthorizeStart waits for the
# EMP (up to about 10 s); timeouts default to 30 s.
_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RegistryMetrics:
    """A set of metrics registered on one registry; subclasses declare the metrics.

    Registering a family twice on one registry fails, so components that share a registry
    share the set: ``for_registry`` creates it on first use and hands out the same one after.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _sets: ClassVar[
        weakref.WeakKeyDictionary[CollectorRegistry, dict[type[RegistryMetrics], RegistryMetrics]]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> Self:
        """The one set of this class on ``registry``, created on first use."""
        with RegistryMetrics._lock:
            sets = RegistryMetrics._sets.setdefault(registry, {})
            metrics = sets.get(cls)
            if metrics is None:
                metrics = sets[cls] = cls(registry)
            assert isinstance(metrics, cls)
            return metrics


class HubjectMetrics(RegistryMetrics):
    """Metrics of the calls to Hubject and of the client certificate."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.requests = Counter(
            "hubject_connector_hubject_requests_total",
            "HTTP requests sent to Hubject (each attempt counts), by operation, HTTP status "
            "and OICP status code ('none' where there was no answer or no code).",
            ("operation", "http_status", "oicp_status"),
            registry=registry,
        )
        self.latency = Histogram(
            "hubject_connector_hubject_request_duration_seconds",
            "Time from sending a request to Hubject to its complete answer, per attempt.",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "hubject_connector_hubject_retries_total",
            "Requests to Hubject repeated, by operation and reason (e.g. http_503, "
            "oicp_021, connection_failed, timeout).",
            ("operation", "reason"),
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "hubject_connector_hubject_rate_limit_waits_total",
            "Requests that waited for Hubject's acceptable-use rate limit.",
            ("operation",),
            registry=registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "hubject_connector_hubject_rate_limit_wait_seconds_total",
            "Seconds spent waiting for Hubject's acceptable-use rate limit.",
            ("operation",),
            registry=registry,
        )
        self.protocol_errors = Counter(
            "hubject_connector_hubject_protocol_errors_total",
            "Answers from Hubject that broke an OICP rule and got the rule's defined outcome "
            "instead, by operation and rule id (answer-unknown-status-code: passed on as it "
            "is; answer-authorized-without-session-id: treated as NotAuthorized).",
            ("operation", "rule"),
            registry=registry,
        )
        self.client_cert_not_after = Gauge(
            "hubject_connector_client_certificate_not_after_timestamp_seconds",
            "Expiry of the client certificate presented to Hubject (Unix time).",
            registry=registry,
        )
        self.client_cert_reloads = Counter(
            "hubject_connector_client_certificate_reloads_total",
            "Times the client certificate files were reloaded after a change, by result.",
            ("result",),
            registry=registry,
        )

"""Prometheus metrics of the inbound server: every name starts with ``hubject_connector_inbound_``.

As ``hubject_connector.metrics``: the metrics live on a registry passed in, one shared set
per registry (``InboundMetrics.for_registry``), so tests use a fresh registry each.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hubject_connector.metrics import RegistryMetrics

# Answers normally take as long as the backend needs (well under a second); the reply
# deadline is 8 s by default and below Hubject's 10 s.
_LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0)

#: ``operation`` label of a request that matched no OICP operation.
UNKNOWN_OPERATION: Final = "unknown"


class InboundMetrics(RegistryMetrics):
    """Requests Hubject sent, how they were answered, and what was refused."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.requests = Counter(
            "hubject_connector_inbound_requests_total",
            "Requests answered to Hubject, by operation ('unknown' for no operation), HTTP "
            "status and the OICP status code of the answer.",
            ("operation", "http_status", "status_code"),
            registry=registry,
        )
        self.latency = Histogram(
            "hubject_connector_inbound_request_duration_seconds",
            "Time from a request's headers to its answer, by operation.",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.unanswered = Counter(
            "hubject_connector_inbound_command_timeouts_total",
            "Commands the backend did not answer validly before the deadline, so the "
            "connector answered Hubject itself: reason no_reply, invalid_reply or bus_error.",
            ("operation", "reason"),
            registry=registry,
        )
        self.late_replies = Counter(
            "hubject_connector_inbound_late_replies_total",
            "Backend replies that arrived after their command's deadline (reported to the "
            "backend as a 'dropped' delivery result).",
            ("operation",),
            registry=registry,
        )
        self.refused_connections = Counter(
            "hubject_connector_inbound_refused_connections_total",
            "Connections closed before a request, by reason (no_client_certificate, "
            "untrusted_client_certificate, not_tls, closed_during_handshake, "
            "tls_handshake_failed, handshake_timeout, read_timeout).",
            ("reason",),
            registry=registry,
        )
        self.refused_requests = Counter(
            "hubject_connector_inbound_refused_requests_total",
            "Requests refused before they reached an operation, by reason (ip_not_allowed, "
            "client_certificate_header_missing, client_certificate_header_invalid, "
            "body_too_large, read_timeout, unknown_path, method_not_allowed).",
            ("reason",),
            registry=registry,
        )
        self.server_cert_not_after = Gauge(
            "hubject_connector_inbound_server_certificate_not_after_timestamp_seconds",
            "Expiry of the server certificate presented to Hubject (Unix time; 0 without TLS).",
            registry=registry,
        )
        self.server_cert_reloads = Counter(
            "hubject_connector_inbound_server_certificate_reloads_total",
            "Times the server certificate files were reloaded after a change, by result.",
            ("result",),
            registry=registry,
        )

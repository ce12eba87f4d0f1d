"""Prometheus metrics of the flows. Every name starts with ``hubject_connector_flow_``.

Each flow counts the backend messages it took from its queue and what became of them:
delivered (Hubject accepted), rejected (Hubject or the connector refused it for good),
dead-lettered, retried later, dropped on purpose. The ``flow`` label is the queue's logical
name (``evse``, ``evse-status``, ``authorization``, ``notifications``, ``cdr``,
``pricing``), so the series are few and fixed.

As in ``hubject_connector.metrics``, metrics live on the registry passed in, one shared
set per registry (``FlowMetrics.for_registry``).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram

from hubject_connector.metrics import RegistryMetrics

#: Records per PushEvseStatus: from a single change to the default batch size of 1000.
_BATCH_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)
# From a status pushed within a second to a CDR delivered days after its session ended.
_DELAY_BUCKETS: Final = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0,
    604800.0,
)


class FlowMetrics(RegistryMetrics):
    """Counters and histograms of the flows, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.consumed = Counter(
            "hubject_connector_flow_messages_consumed_total",
            "Backend messages taken from a flow's queue (each delivery counts, retries too).",
            ("flow",),
            registry=registry,
        )
        self.delivered = Counter(
            "hubject_connector_flow_messages_delivered_total",
            "Backend messages Hubject accepted (delivery result 'accepted').",
            ("flow",),
            registry=registry,
        )
        self.rejected = Counter(
            "hubject_connector_flow_messages_rejected_total",
            "Backend messages refused for good, by Hubject or by the connector (022).",
            ("flow",),
            registry=registry,
        )
        self.dead_lettered = Counter(
            "hubject_connector_flow_messages_dead_lettered_total",
            "Backend messages sent to the dead-letter queue.",
            ("flow",),
            registry=registry,
        )
        self.retried = Counter(
            "hubject_connector_flow_messages_retried_total",
            "Deliveries that failed for a passing reason and are tried again later.",
            ("flow",),
            registry=registry,
        )
        self.dropped = Counter(
            "hubject_connector_flow_messages_dropped_total",
            "Backend messages deliberately not sent (an older status, a superseded status, "
            "a progress notification over the limit, a request past its deadline).",
            ("flow",),
            registry=registry,
        )
        self.status_batch_size = Histogram(
            "hubject_connector_flow_status_batch_size",
            "EVSE status records per PushEvseStatus call.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.status_push_failures = Counter(
            "hubject_connector_flow_status_push_failures_total",
            "PushEvseStatus calls that failed for a passing reason (the statuses stay "
            "pending and are pushed again).",
            registry=registry,
        )
        self.delay = Histogram(
            "hubject_connector_flow_delivery_delay_seconds",
            "Time from a message's 'time' (when the thing happened) to Hubject's answer.",
            ("flow",),
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        self.results_unpublished = Counter(
            "hubject_connector_flow_results_unpublished_total",
            "Delivery results that could not be put on the bus and were given up.",
            registry=registry,
        )

"""Metrics of the state store: how long each operation on it takes.

One family per registry, shared by every store on it (as ``hubject_connector.metrics``
does for the Hubject client), so two stores on one registry never register it twice.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Histogram

from hubject_connector.metrics import RegistryMetrics

# A statement on a local SQLite file or a nearby PostgreSQL takes about a millisecond; a
# batch of 1000 statuses some tens; waiting for exclusive() lasts as long as a push.
_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class StateMetrics(RegistryMetrics):
    """Metrics of the state store."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.operation_seconds = Histogram(
            "hubject_connector_state_operation_seconds",
            "Time an operation on the state store took, failed ones included, by store "
            "kind (sqlite, postgresql) and operation (the StateStore method; 'exclusive' "
            "is the wait for the lock).",
            ("store", "operation"),
            buckets=_BUCKETS,
            registry=registry,
        )

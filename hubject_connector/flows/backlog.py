"""The backlog gauges: what waits for someone, read every ``REFRESH_SECONDS``.

What passes through: one count from the bus (``Bus.dead_letter_count``) and one summary
from the state store (``StateStore.pending_status_summary``) per refresh, into gauges for
alerts: dead letters waiting, EVSE statuses pending a push and the age of the oldest,
status results owed. A background task of ``Flows`` reads them, never a message's path,
and never Hubject. A failed read leaves the gauges as they were and is logged; the next
refresh tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Gauge

from hubject_connector.bus.base import Bus
from hubject_connector.metrics import RegistryMetrics
from hubject_connector.state.base import StateStore

_log = structlog.get_logger(__name__)

#: How often the gauges are read: well under an alert's "for" of minutes, and a count
#: every 15 s costs the store and the broker nothing worth noting.
REFRESH_SECONDS: Final = 15.0


class BacklogMetrics(RegistryMetrics):
    """The backlog gauges, on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.dead_letters = Gauge(
            "hubject_connector_bus_dead_letters",
            "Dead letters waiting in the dead-letter queue (read every 15 s).",
            registry=registry,
        )
        self.status_pending = Gauge(
            "hubject_connector_flow_status_pending",
            "EVSE statuses stored and not yet pushed to Hubject (read every 15 s).",
            registry=registry,
        )
        self.status_oldest_pending = Gauge(
            "hubject_connector_flow_status_oldest_pending_seconds",
            "Age of the oldest EVSE status not yet pushed, from its change time; 0 when "
            "none is pending (read every 15 s).",
            registry=registry,
        )
        self.status_results_owed = Gauge(
            "hubject_connector_flow_status_results_owed",
            "Delivery results about status messages owed to the backend and not yet "
            "confirmed by the bus (read every 15 s).",
            registry=registry,
        )


class Backlog:
    """Reads the backlog into its gauges, now (``refresh``) or on a timer (``start``)."""

    def __init__(self, bus: Bus, store: StateStore, registry: CollectorRegistry) -> None:
        self._bus = bus
        self._store = store
        self.metrics = BacklogMetrics.for_registry(registry)
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def refresh(self) -> None:
        """Read both counts into the gauges; one failing leaves its gauges and is logged."""
        try:
            self.metrics.dead_letters.set(await self._bus.dead_letter_count())
        except Exception as exc:  # the bus away for a moment: readiness says so already
            _log.info("flows.backlog_unread", part="bus", error=repr(exc))
        try:
            summary = await self._store.pending_status_summary()
        except Exception as exc:  # likewise the store
            _log.info("flows.backlog_unread", part="state_store", error=repr(exc))
            return
        age = 0.0
        if summary.oldest is not None:
            # A change time in the future (a backend clock ahead) is no lag.
            age = max(0.0, (datetime.now(UTC) - summary.oldest).total_seconds())
        self.metrics.status_pending.set(summary.pending)
        self.metrics.status_oldest_pending.set(age)
        self.metrics.status_results_owed.set(summary.results_owed)

    def start(self) -> None:
        """Refresh now, then every ``REFRESH_SECONDS`` until ``stop``."""
        if self._task is None:
            self._stopped = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="flows-backlog-gauges")

    async def _run(self) -> None:
        while not self._stopped.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_SECONDS):
                    await self._stopped.wait()

    async def stop(self) -> None:
        """Stop refreshing (the gauges keep their last values).

        Not by cancellation alone: a RabbitMQ call cancelled mid-way may surface as a
        channel error, which ``refresh`` logs and goes on from; the flag ends the loop.
        """
        task, self._task = self._task, None
        if task is not None:
            self._stopped.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

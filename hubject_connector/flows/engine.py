"""``Flows``: every flow of the connector, consuming its queue, started and stopped together.

What passes through: the backend's messages, from the queues the bus declared
(``bus.topology.connector_queues``), each to the flow of its queue; the results and
replies go back on the bus. ``Flows`` owns the consumers and the background work
(status batching and refresh, the results outbox, the backlog gauges), not the bus, the
client or the store: the service (``hubject_connector.app``) opens and closes those around it.

Stopping lets the handlers in flight finish (a cancelled one hands its message back to
the bus), commits the status changes taken, and pushes what is pending within the grace
period; whatever is left stays in the state store for the next start.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import structlog
from prometheus_client import CollectorRegistry

from hubject_connector.bus.base import Bus, Consumer, QueueSpec
from hubject_connector.bus.topology import connector_queues
from hubject_connector.config import Config
from hubject_connector.flows.authorization import AuthorizationFlow
from hubject_connector.flows.backlog import Backlog
from hubject_connector.flows.cdr import CdrFlow
from hubject_connector.flows.delivery import Flow, FlowParts
from hubject_connector.flows.evse import EvseFlow
from hubject_connector.flows.metrics import FlowMetrics
from hubject_connector.flows.notifications import NotificationFlow
from hubject_connector.flows.pricing import PricingFlow
from hubject_connector.flows.results import Results
from hubject_connector.flows.status import StatusFlow
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.state.base import StateStore
from hubject_connector.translate.outbound import Context

_log = structlog.get_logger(__name__)

#: Most status changes handled at once: they are committed together (group commit).
MAX_STATUS_PREFETCH: Final = 1000
MIN_STATUS_PREFETCH: Final = 64


class Flows:
    """Every flow of the connector (module doc). ``start()`` needs a connected bus."""

    def __init__(
        self,
        config: Config,
        *,
        bus: Bus,
        client: HubjectClient,
        store: StateStore,
        registry: CollectorRegistry,
    ) -> None:
        self.config = config
        self.metrics = FlowMetrics.for_registry(registry)
        self.results = Results(bus, self.metrics)
        self.parts = FlowParts(
            config=config, bus=bus, client=client, store=store, results=self.results,
            metrics=self.metrics, context=Context.from_config(config.hubject),
        )
        self.status = StatusFlow(self.parts)
        flows: list[Flow] = [
            EvseFlow(self.parts),
            self.status,
            AuthorizationFlow(self.parts),
            NotificationFlow(self.parts),
            CdrFlow(self.parts),
            PricingFlow(self.parts),
        ]
        self.flows: dict[str, Flow] = {flow.name: flow for flow in flows}
        #: The backlog gauges (dead letters, statuses pending, results owed), on a timer.
        self.backlog = Backlog(bus, store, registry)
        self._consumers: list[Consumer] = []
        self._running = False

    @property
    def running(self) -> bool:
        """Whether the consumers and background tasks run."""
        return self._running and all(flow.healthy for flow in self.flows.values())

    def _prefetch(self, spec: QueueSpec) -> int | None:
        if spec.prefetch is not None:
            return spec.prefetch
        if spec.name == StatusFlow.name:
            # Many changes at once make big group commits and full batches.
            size = self.config.flows.status_batch_size
            return max(MIN_STATUS_PREFETCH, min(MAX_STATUS_PREFETCH, size))
        return None

    async def start(self) -> None:
        """Start the background work, then a consumer per queue."""
        if self._running:
            return
        bus = self.parts.bus
        try:
            for flow in self.flows.values():
                await flow.start()
            for spec in connector_queues(self.config.flows):
                owner = self.flows.get(spec.name)
                if owner is None:
                    _log.warning("flows.queue_without_flow", queue=spec.name)
                    continue
                consumer = await bus.consume(
                    spec, owner.handler(spec), prefetch=self._prefetch(spec), validate=False)
                self._consumers.append(consumer)
            self.backlog.start()
        except BaseException:
            await self.stop(0.0)
            raise
        self._running = True
        _log.info("flows.started", queues=list(self.flows))

    async def stop(self, grace: float) -> None:
        """Stop consuming, let handlers finish, push what is pending, within ``grace``."""
        deadline = time.monotonic() + max(0.0, grace)
        self._running = False
        await self.backlog.stop()
        consumers, self._consumers = self._consumers, []
        # All at once: each lets its handlers finish within the grace period.
        outcomes = await asyncio.gather(
            *(consumer.cancel(max(0.0, deadline - time.monotonic())) for consumer in consumers),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # The bus went away: its messages return to the queue by themselves.
                _log.warning("flows.consumer_cancel_failed", error=repr(outcome))
        for flow in self.flows.values():
            try:
                await flow.stop(max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # stop the others anyway
                _log.error("flows.stop_failed", flow=flow.name, error=repr(exc))
        await self.results.close(max(0.0, deadline - time.monotonic()))
        _log.info("flows.stopped")

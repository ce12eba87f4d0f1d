"""The connector's work queues: which exist, what each receives, how each is retried.

What passes through: nothing at run time. This room names the queues the connector
consumes, from the message contract (``MESSAGE_SPECS[type].queue``), so that the bus can
declare all of them at ``connect()``, before any consumer starts, and a backend that
publishes first loses nothing. It hands back :class:`~hubject_connector.bus.base.QueueSpec`
values: name, binding patterns, whether order matters, and the retry delays in force.

* ``evse`` (EVSE data: upsert, delete, full load) and ``pricing`` are *ordered*: one
  consumer at a time across replicas, because Hubject applies pushes in the order sent.
* ``evse-status``, ``authorization`` and ``notifications`` use the bus's retry delays.
* ``cdr`` is retried for days (OICP: a CDR may still be sent days after the session), with
  delays doubling from ``FlowsConfig.cdr_retry_initial_delay_seconds`` up to
  ``cdr_retry_max_delay_seconds``, then that maximum repeated, until their sum reaches
  ``cdr_retry_for_seconds``.
"""

from __future__ import annotations

from typing import Final

from hubject_connector.bus.base import QueueSpec
from hubject_connector.bus.contract import MESSAGE_SPECS, Direction
from hubject_connector.config import FlowsConfig
from hubject_connector.errors import BusError

#: Queues whose messages must be handled one at a time, in order, across replicas.
ORDERED_QUEUES: Final = frozenset({"evse", "pricing"})
#: The queue of charge detail records, retried by FlowsConfig's CDR settings.
CDR_QUEUE: Final = "cdr"
#: Upper bound of the number of CDR retry delays (a tiny maximum delay would otherwise make
#: millions of them); the last one then covers the rest of the retry time.
MAX_RETRY_DELAYS: Final = 100_000


class UnknownQueue(BusError):
    """No connector queue has that name."""

    transient = False

    def __init__(self, name: str) -> None:
        known = ", ".join(spec.name for spec in connector_queues())
        super().__init__(f"no connector queue is called {name!r} (known: {known})")
        self.name = name


def cdr_retry_delays(flows: FlowsConfig) -> tuple[float, ...]:
    """The pauses between CDR retries: doubling to the maximum, until the sum is reached."""
    delays: list[float] = []
    total = 0.0
    delay = flows.cdr_retry_initial_delay_seconds
    while total < flows.cdr_retry_for_seconds:
        if len(delays) == MAX_RETRY_DELAYS - 1:
            # The rest in one pause: retried as long as configured, just less often.
            delays.append(flows.cdr_retry_for_seconds - total)
            break
        step = min(delay, flows.cdr_retry_max_delay_seconds)
        delays.append(step)
        total += step
        delay = step * 2
    return tuple(delays)


def connector_queues(flows: FlowsConfig | None = None) -> tuple[QueueSpec, ...]:
    """Every queue the connector consumes, bound to the message types routed to it."""
    flows = flows or FlowsConfig()
    bindings: dict[str, list[str]] = {}
    for spec in MESSAGE_SPECS.values():
        if spec.direction is Direction.TO_CONNECTOR and spec.queue is not None:
            bindings.setdefault(spec.queue, []).append(str(spec.type))
    return tuple(
        QueueSpec(
            name,
            bindings=tuple(types),
            ordered=name in ORDERED_QUEUES,
            retry_delays=cdr_retry_delays(flows) if name == CDR_QUEUE else None,
        )
        for name, types in bindings.items()
    )


def queue_spec(name: str, flows: FlowsConfig | None = None) -> QueueSpec:
    """The connector queue called ``name`` (raises :class:`UnknownQueue`)."""
    for spec in connector_queues(flows):
        if spec.name == name:
            return spec
    raise UnknownQueue(name)

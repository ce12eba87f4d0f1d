"""RabbitMQ closes the connector's connection in the middle of a burst.

The broker's operator (or a failover, or a network device) ends the connection with
``rabbitmqctl close_connection``; the connector is told so by the broker, reconnects
(aio-pika's robust connection), declares its queues and consumers again, and goes on. The
messages whose handlers were running are delivered again on the new connection.
"""

from __future__ import annotations

import asyncio

import pytest

from hubject_connector.simulator import Simulator
from tests.integration.bus.conftest import close_connections, connection_pids
from tests.integration.flows.conftest import eventually
from tests.resilience.conftest import (
    WAIT,
    Burst,
    Envs,
    assert_nothing_lost,
    send_all,
    settled,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


async def test_connections_closed_by_the_broker_mid_burst_lose_nothing(
    envs: Envs, simulator: Simulator, rabbitmq_url: str,
) -> None:
    env = await envs.make("rabbitmq", simulator, url=rabbitmq_url)
    await env.connector()
    name = env.config.bus.rabbitmq.connection_name
    burst = Burst.make(cdrs=30, evses=6, changes=60)
    docs = burst.interleaved()
    # Hubject holds three CDRs and a status push: the close finds them in flight, and
    # their answers come back after it, on a connection that is gone.
    held = [simulator.faults.hold(operation=op)
            for op in ("ChargeDetailRecord",) * 3 + ("PushEvseStatus",)]

    await send_all(env.backend, docs[: len(docs) // 3])
    for hold in held:
        async with asyncio.timeout(WAIT):
            await hold.arrived.wait()
    closed = await close_connections(name)
    assert closed, "the connector's connection was not found on the broker"
    for hold in held:
        hold.release()
    await send_all(env.backend, docs[len(docs) // 3 : 2 * len(docs) // 3])
    # Again, once the connector is back: a second reconnection in the same burst.
    await eventually(lambda: _reconnected(name, closed), "the connector to reconnect")
    await close_connections(name)
    await send_all(env.backend, docs[2 * len(docs) // 3 :])

    await settled(env.backend, burst)
    assert_nothing_lost(env, burst, exactly_one_call=True)


async def _reconnected(name: str, closed: list[str]) -> bool:
    pids = await connection_pids(name)
    return bool(pids) and not set(pids) & set(closed)

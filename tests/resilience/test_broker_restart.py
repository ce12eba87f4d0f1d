"""The RabbitMQ broker stops (or crashes) in the middle of a burst and starts again.

A node of the test's own (``broker.OwnBroker``) carries the connector's and the
backend's traffic; it is stopped while CDRs and statuses flow and started again on the
same port with the same data. What the broker had confirmed is on disk (durable quorum
queues, persistent messages); the connector reconnects, declares its queues and
consumers again and finishes the burst; results it could not publish meanwhile wait in
its outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hubject_connector.simulator import Simulator
from tests.resilience.broker import OwnBroker, installed
from tests.resilience.conftest import (
    WAIT,
    Burst,
    Envs,
    assert_nothing_lost,
    send_all,
    settled,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
async def own_broker() -> AsyncIterator[OwnBroker]:
    """A started RabbitMQ node of this test's own, destroyed at its end."""
    why_not = installed()
    if why_not is not None:
        pytest.skip(f"cannot run a RabbitMQ node of our own: {why_not}")
    broker = OwnBroker()
    try:
        await broker.start()
        yield broker
    finally:
        await broker.destroy()


@pytest.mark.parametrize("how", ["stop", "crash"])
async def test_a_broker_restart_mid_burst_loses_nothing(
    own_broker: OwnBroker, envs: Envs, simulator: Simulator, how: str,
) -> None:
    # own_broker first: it is torn down last, after the queues on it are deleted.
    # After a crash, RabbitMQ 3.10's quorum queues on a single node stay without a leader
    # (rabbitmq-server#10070: "leader not known"), and nothing flows until an operator
    # triggers an election: the crash is shown on classic queues.
    env = await envs.make("rabbitmq", simulator, url=own_broker.url,
                          quorum_queues=how == "stop")
    await env.connector()
    burst = Burst.make(cdrs=20, evses=5, changes=40)
    docs = burst.interleaved()
    # Hubject holds two CDRs: the broker goes away while they are being sent.
    held = [simulator.faults.hold(operation="ChargeDetailRecord") for _ in range(2)]

    await send_all(env.backend, docs[: len(docs) // 2])
    for hold in held:
        async with asyncio.timeout(WAIT):
            await hold.arrived.wait()
    await (own_broker.stop() if how == "stop" else own_broker.crash())
    for hold in held:
        hold.release()
    await own_broker.start()
    await send_all(env.backend, docs[len(docs) // 2 :])

    await settled(env.backend, burst)
    assert_nothing_lost(env, burst, exactly_one_call=True)

"""Acks sent together (``AckCoalescer``) settle exactly the messages that were handled.

Acks asked for in one turn of the event loop go out as one ``multiple`` ack when they are
the lowest open delivery tags. Such an ack covers every tag up to its own, so it must
never reach past a message still being handled or being handed back: that one would be
taken from the queue unhandled, and lost.
"""

from __future__ import annotations

import asyncio

import pytest

from hubject_connector.bus.base import IncomingMessage, QueueSpec
from tests.integration.bus.conftest import EVSE_STATUS, WAIT, BusKit, Collector, status_event

pytestmark = pytest.mark.rabbitmq


async def test_a_message_handed_back_among_acked_ones_comes_back_alone(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    publisher = await kit.connected(queues=[spec])
    sent = [await publisher.publish(EVSE_STATUS, status_event(evse=f"DE*ABC*E{n}*1"))
            for n in range(20)]
    stuck = sent[10]
    go = asyncio.Event()
    finished: list[str] = []
    arrived: list[str] = []
    all_arrived = asyncio.Event()
    others_finished = asyncio.Event()

    async def handler(message: IncomingMessage) -> None:
        arrived.append(message.message_id)
        if len(arrived) == len(sent):
            all_arrived.set()
        if message.message_id == stuck:
            await asyncio.Event().wait()  # handled until the consumer stops: handed back
        await go.wait()  # the others all finish in the same turn of the loop
        finished.append(message.message_id)
        if len(finished) == len(sent) - 1:
            others_finished.set()

    consumer_bus = await kit.connected(queues=[spec])
    consumer = await consumer_bus.consume(spec, handler, prefetch=50)
    async with asyncio.timeout(WAIT):
        await all_arrived.wait()
    go.set()
    async with asyncio.timeout(WAIT):
        await others_finished.wait()
    await consumer.cancel(0.5)

    # Only the message handed back is delivered again; every acked one is gone for good.
    again = Collector()
    second = await (await kit.connected(queues=[spec])).consume(spec, again)
    await again.wait_for(1)
    await asyncio.sleep(0.5)  # anything wrongly left unacked would arrive meanwhile
    await second.cancel(1.0)
    assert again.ids == [stuck]
    assert sorted(finished) == sorted(set(sent) - {stuck})


async def test_many_messages_handled_at_once_are_all_acked(rabbit_kit: BusKit) -> None:
    kit = rabbit_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    publisher = await kit.connected(queues=[spec])
    sent = {await publisher.publish(EVSE_STATUS, status_event()) for _ in range(200)}
    seen = Collector()
    bus = await kit.connected(queues=[spec])
    consumer = await bus.consume(spec, seen, prefetch=100)
    await seen.wait_for(len(sent))
    await consumer.cancel(1.0)

    again = Collector()
    second = await (await kit.connected(queues=[spec])).consume(spec, again)
    await asyncio.sleep(0.5)
    await second.cancel(1.0)
    assert set(seen.ids) == sent
    assert again.ids == []
